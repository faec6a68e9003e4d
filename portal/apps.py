from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    """The members' pages: requests, status, login, account, help."""

    name = "portal"
    verbose_name = _("Members' pages")
