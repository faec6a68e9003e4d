"""Tickets and their history in the admin: read-only; history cannot be edited or deleted."""

from __future__ import annotations

from django.contrib import admin

from core.admin import ReadOnlyAdmin, register_remaining
from tickets.models import Ticket, TicketEvent


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ("reference", "kind", "state", "created_at", "decided_at")
    list_filter = ("state", "kind")
    search_fields = ("reference",)


@admin.register(TicketEvent)
class TicketEventAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "kind", "from_state", "to_state", "actor", "created_at")
    list_filter = ("kind",)


register_remaining("tickets")
