from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = _("Workflows")

    def ready(self) -> None:
        # Tasks sit above services: the services publish through workflows.dispatch, and the
        # task that consumes each publication is bound here, once every app is loaded.
        from django.db.models.signals import post_save

        from tickets.models import TicketEvent
        from workflows import dispatch, tasks
        from workflows.services.outbox import OUTBOX_DELIVERY
        from workflows.services.webhooks import WEBHOOK_DELIVERY

        dispatch.publisher_bind(
            name=OUTBOX_DELIVERY,
            publish=lambda message_id: tasks.outbox_deliver_task.delay(message_id),
        )
        dispatch.publisher_bind(
            name=WEBHOOK_DELIVERY,
            publish=lambda delivery_id: tasks.webhook_deliver_task.delay(delivery_id),
        )
        # Webhook deliveries are written with the history row that causes them (outbox).
        post_save.connect(_event_saved, sender=TicketEvent, dispatch_uid="guichet-webhooks-enqueue")


def _event_saved(sender: object, instance: object, created: bool, **kwargs: object) -> None:
    from tickets.models import TicketEvent
    from workflows.services.webhooks import webhooks_enqueue

    if created and isinstance(instance, TicketEvent):
        webhooks_enqueue(instance)
