"""API clients (OAuth 2.0 client credentials) and their short-lived access tokens, hashed."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    REQUESTS_WRITE = "requests:write", _("Submit members' requests")
    REQUESTS_READ = "requests:read", _("Read a request's public status")
    REGISTRY_WRITE = "registry:write", _("Upsert registry members")
    EVENTS_READ = "events:read", _("Read the events feed")


class ApiClient(models.Model):
    """A machine that calls the API; its secret is stored as a SHA-256 digest only."""

    client_id = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=100, unique=True)
    scopes = models.JSONField(default=list)
    secret_hash = models.CharField(max_length=64)
    # After a rotation the previous secret works until `previous_valid_until`.
    previous_secret_hash = models.CharField(max_length=64, blank=True, default="")
    previous_valid_until = models.DateTimeField(null=True, blank=True)
    calls_per_minute = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    # DRF reads `request.user.is_authenticated`: an authenticated client is the caller.
    @property
    def is_authenticated(self) -> bool:
        return self.revoked_at is None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class ApiToken(models.Model):
    """One access token: only its SHA-256 digest is kept; it dies at `expires_at` or on revoke."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = _("API access token")
        verbose_name_plural = _("API access tokens")
        indexes = [models.Index(fields=["expires_at"], name="api_token_expiry_idx")]

    def __str__(self) -> str:
        return f"token of {self.client_id} until {self.expires_at:%Y-%m-%d %H:%M}"
