from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = _("Workflows")

    def ready(self) -> None:
        # Tasks sit above services: the services publish through workflows.dispatch, and the
        # task that consumes each publication is bound here, once every app is loaded.
        from workflows import dispatch, tasks
        from workflows.services.outbox import OUTBOX_DELIVERY

        dispatch.publisher_bind(
            name=OUTBOX_DELIVERY,
            publish=lambda message_id: tasks.outbox_deliver_task.delay(message_id),
        )
