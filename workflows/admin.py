"""The outbox in the admin: read-only, no recipient data editable."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, register_remaining
from workflows.models import OutboxMessage, WebhookDelivery
from workflows.services.webhooks import webhook_replay


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "template", "status", "attempts", "created_at", "sent_at")
    list_filter = ("status", "template")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log; "replay" sends chosen deliveries again (receivers deduplicate by id)."""

    list_display = (
        "event_id",
        "subscription",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    )
    list_filter = ("status",)
    actions = ["replay"]

    @admin.action(description=_("Replay the chosen deliveries"))
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        for delivery_id in queryset.values_list("pk", flat=True):
            webhook_replay(delivery_id=delivery_id)
        self.message_user(request, _("Deliveries queued again."))


register_remaining("workflows")
