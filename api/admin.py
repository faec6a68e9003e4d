from django.contrib import admin

from api.models import ApiClient
from core.admin import ReadOnlyAdmin


@admin.register(ApiClient)
class ApiClientAdmin(ReadOnlyAdmin):
    """Clients are created and changed with `manage.py api_client`; secrets never shown."""

    list_display = ("name", "client_id", "scopes", "calls_per_minute", "created_at", "revoked_at")
