"""Admin base: superusers only, read-only, secrets never shown (docs/security.md 12, 30)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.contrib import admin
from django.db import models
from django.http import HttpRequest

# Columns that hold a password hash, a secret-answer hash, a token digest, an authenticator key
# (encrypted) or a backup-code digest: never displayed.
SECRET_FIELD_MARKERS = ("password", "secret_answer_hash", "token_hash", "encrypted_key", "digest")

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups, _ListDisplayT

    # ModelAdmin is generic in the stubs only (no __class_getitem__ at runtime).
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin


def is_secret_field(name: str) -> bool:
    """Whether a model field holds a credential (hash or not) that no page may show."""
    return any(marker in name for marker in SECRET_FIELD_MARKERS)


def visible_fields(model: type[models.Model]) -> list[str]:
    """Every concrete field of `model` except the secret ones."""
    return [
        field.name
        for field in model._meta.get_fields()
        if getattr(field, "concrete", False)
        and not field.many_to_many
        and not is_secret_field(field.name)
    ]


class ReadOnlyAdmin(_ModelAdmin):
    """Look, never touch: changes go through the services, which keep the history."""

    def get_fields(self, request: HttpRequest, obj: Any = None) -> _FieldGroups:
        return list(visible_fields(self.model))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return visible_fields(self.model)

    def get_list_display(self, request: HttpRequest) -> _ListDisplayT[Any]:
        return list(self.list_display) if self.list_display != ("__str__",) else ["__str__"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _superuser_only(request: HttpRequest) -> bool:
    """The admin is for IT superusers; agents and supervisors work in the desk."""
    user = request.user
    return bool(user.is_active and user.is_staff and user.is_superuser)


admin.site.has_permission = _superuser_only  # type: ignore[method-assign]
admin.site.site_header = "Guichet"
admin.site.site_title = "Guichet"


def register_remaining(app_label: str) -> None:
    """Register, read-only, any model of the app nobody registered explicitly."""
    for model in apps.get_app_config(app_label).get_models():
        if not admin.site.is_registered(model):
            admin.site.register(model, ReadOnlyAdmin)
