"""The outbox in the admin: read-only, no recipient data editable."""

from __future__ import annotations

from django.contrib import admin

from core.admin import ReadOnlyAdmin, register_remaining
from workflows.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "template", "status", "attempts", "created_at", "sent_at")
    list_filter = ("status", "template")


register_remaining("workflows")
