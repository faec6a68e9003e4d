from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """Infrastructure shared by every face: middleware, logging, checks, health, admin base."""

    name = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        # System checks, auth log receivers, the `any_of` lookup.
        from core import audit, checks, lookups  # noqa: F401
