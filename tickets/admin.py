"""Tickets and their history in the admin: read-only; history cannot be edited or deleted."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from core.admin import ReadOnlyAdmin, register_remaining
from members.admin import admin_look_record
from members.models import AccessKind
from tickets.models import Ticket, TicketEvent


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ("reference", "kind", "state", "created_at", "decided_at")
    list_filter = ("state", "kind")
    search_fields = ("reference",)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        ticket = self.get_object(request, object_id)
        if ticket is not None:
            admin_look_record(
                request,
                response,
                kind=AccessKind.TICKET_VIEW,
                member_id=ticket.member_id,
                ticket_reference=ticket.reference,
            )
        return response


@admin.register(TicketEvent)
class TicketEventAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "kind", "from_state", "to_state", "actor", "created_at")
    list_filter = ("kind",)


register_remaining("tickets")
