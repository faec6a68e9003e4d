"""Registry and accounts in the admin: read-only, no password or secret-answer hash shown."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from core.admin import ReadOnlyAdmin, register_remaining
from members.models import AccessKind, Account, Member
from members.services.access_journal import access_record

# The admin is a way into members' files like the desk (superusers only): each look is written
# to the access journal as the desk's are, marked as the admin's (docs/product.md).
ADMIN_LOOK = "admin"


def admin_look_record(
    request: HttpRequest,
    response: HttpResponse,
    *,
    kind: AccessKind,
    member_id: int | None = None,
    ticket_reference: str = "",
) -> None:
    """One journal row for an admin page that showed a member's file (a 200 answer)."""
    actor = request.user
    if response.status_code != 200 or not isinstance(actor, Account):
        return
    access_record(
        actor=actor,
        kind=kind,
        member_id=member_id,
        ticket_reference=ticket_reference,
        reason_text=ADMIN_LOOK,
    )


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    list_display = ("member_number", "last_name", "first_name", "birth_date")
    search_fields = ("member_number",)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        member = self.get_object(request, object_id)
        if member is not None:
            admin_look_record(request, response, kind=AccessKind.MEMBER_VIEW, member_id=member.pk)
        return response

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        admin_look_record(request, response, kind=AccessKind.REGISTRY_SEARCH)
        return response


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("username", "is_staff", "is_active", "status", "created_at")
    list_filter = ("is_staff", "is_active", "status")


register_remaining("members")
