"""Registry and accounts in the admin: read-only, no password or secret-answer hash shown."""

from __future__ import annotations

from django.contrib import admin

from core.admin import ReadOnlyAdmin, register_remaining
from members.models import Account, Member


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    list_display = ("member_number", "last_name", "first_name", "birth_date")
    search_fields = ("member_number",)


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("username", "is_staff", "is_active", "status", "created_at")
    list_filter = ("is_staff", "is_active", "status")


register_remaining("members")
