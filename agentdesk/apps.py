from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AgentDeskConfig(AppConfig):
    """The agents' desk: queues, ticket pages, decisions, registry search."""

    name = "agentdesk"
    verbose_name = _("Agents' desk")
