"""The member registry (imported from the insurer) and the members' portal accounts."""

from __future__ import annotations

import datetime
from typing import Any, ClassVar, cast

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device

from members.names import normalise_name


class CoverageKind(models.TextChoices):
    HEALTH_PRINCIPAL = "health_principal", _("Principal insured (health)")
    HEALTH_BENEFICIARY = "health_beneficiary", _("Beneficiary (health)")
    PROVIDENT_EMPLOYEE = "provident_employee", _("Employee under a group provident scheme")
    RETIREE = "retiree", _("Retiree receiving a supplementary pension")


# Kinds of coverage that entitle their holder to an account of their own (docs/product.md).
ELIGIBLE_COVERAGE_KINDS = frozenset(
    {CoverageKind.HEALTH_PRINCIPAL, CoverageKind.PROVIDENT_EMPLOYEE, CoverageKind.RETIREE}
)


class Member(models.Model):
    """One person in the insurer's registry; `member_number` is assigned and never changes."""

    member_number = models.CharField(_("member ID"), max_length=20, unique=True)
    nir = models.CharField(_("social-security number"), max_length=15, blank=True, default="")
    last_name = models.CharField(_("last name"), max_length=150)
    first_name = models.CharField(_("first name"), max_length=150)
    birth_date = models.DateField(_("birth date"))
    email = models.EmailField(_("e-mail in the registry"), max_length=254, blank=True, default="")
    # Normalised names (accents, case, hyphens folded) kept for matching and desk search.
    last_name_key = models.CharField(max_length=150, editable=False, default="")
    first_name_key = models.CharField(max_length=150, editable=False, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("registry member")
        verbose_name_plural = _("registry members")
        indexes = [
            # Retirees register by NIR: lookup by exact NIR.
            models.Index(fields=["nir"], name="member_nir_idx"),
            # Desk search by name prefix (normalised), then first name.
            models.Index(fields=["last_name_key", "first_name_key"], name="member_name_key_idx"),
            # Desk search by e-mail, case-insensitive.
            models.Index(Lower("email"), name="member_email_lower_idx"),
        ]

    def __str__(self) -> str:
        return self.member_number

    def save(self, *args: object, **kwargs: object) -> None:
        self.last_name_key = normalise_name(self.last_name)[:150]
        self.first_name_key = normalise_name(self.first_name)[:150]
        self.updated_at = timezone.now()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {
                *update_fields,  # type: ignore[misc]
                "last_name_key",
                "first_name_key",
                "updated_at",
            }
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Coverage(models.Model):
    """A contract or pension line held by a member, open-ended when `end` is empty."""

    # No index of its own: the unique (member, kind) constraint's index serves lookups by member,
    # and every registry write would otherwise maintain two.
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="coverages", db_index=False
    )
    kind = models.CharField(_("kind"), max_length=32, choices=CoverageKind.choices)
    start = models.DateField(_("start"), null=True, blank=True)
    end = models.DateField(_("end"), null=True, blank=True)

    class Meta:
        verbose_name = _("coverage")
        verbose_name_plural = _("coverages")
        constraints = [
            models.UniqueConstraint(fields=["member", "kind"], name="coverage_member_kind_uniq"),
            models.CheckConstraint(
                condition=models.Q(end__isnull=True)
                | models.Q(start__isnull=True)
                | models.Q(end__gte=models.F("start")),
                name="coverage_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}:{self.kind}"

    def is_active_on(self, day: datetime.date) -> bool:
        """Whether this coverage is in force on `day`."""
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


class AccountManager(BaseUserManager["Account"]):
    def create_user(self, username: str, password: str | None = None, **extra: object) -> Account:
        account = self.model(username=username, **extra)
        account.set_password(password)
        account.save(using=self._db)
        return account

    def create_superuser(
        self, username: str, password: str | None = None, **extra: object
    ) -> Account:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(username, password, **extra)


class AccountStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    CLOSED = "closed", _("Closed")
    # The member followed "this was not me": no login, no recovery until an agent unfreezes it.
    FROZEN = "frozen", _("Frozen (the member said it was not them)")


# The plugin cannot see the reverse manager of django-otp's (untyped) Device.user.
class Account(AbstractBaseUser, PermissionsMixin):  # type: ignore[django-manager-missing]
    """A login: staff log in with a username, members with their member ID (never editable)."""

    username = models.CharField(_("username"), max_length=150, unique=True, editable=False)
    member = models.OneToOneField(
        Member,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="account",
        editable=False,
    )
    email = models.EmailField(_("e-mail address"), max_length=254, blank=True, default="")
    first_name = models.CharField(_("first name"), max_length=150, blank=True, default="")
    last_name = models.CharField(_("last name"), max_length=150, blank=True, default="")
    is_staff = models.BooleanField(_("staff"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    status = models.CharField(
        _("status"), max_length=16, choices=AccountStatus.choices, default=AccountStatus.ACTIVE
    )
    must_change_password = models.BooleanField(_("must change password"), default=False)
    temporary_password_expires_at = models.DateTimeField(
        _("temporary password expires at"), null=True, blank=True
    )
    secret_question = models.CharField(_("secret question"), max_length=200, blank=True, default="")
    # Normalised answer, hashed like a password (docs/security.md §6).
    secret_answer_hash = models.CharField(max_length=256, blank=True, default="", editable=False)
    password_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the address on file last changed (a takeover signal: workflows/risk.py).
    email_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When a change of the address last became pending (applies later; vetoed or not): the same
    # takeover signal must see a change before it applies (workflows/risk.py).
    email_change_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    frozen_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AccountManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            # A portal account belongs to a registry member; staff accounts never do.
            models.CheckConstraint(
                condition=models.Q(is_staff=False, member__isnull=False)
                | models.Q(is_staff=True, member__isnull=True)
                | models.Q(is_superuser=True),
                name="account_member_xor_staff",
            ),
        ]
        indexes = [
            # Takeover signal "typed e-mail on file for another member": lower(email) = lower(%s).
            models.Index(Lower("email"), name="account_email_lower_idx"),
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def is_member(self) -> bool:
        return self.member_id is not None and not self.is_staff

    @property
    def is_closed(self) -> bool:
        return self.status == AccountStatus.CLOSED

    @property
    def is_frozen(self) -> bool:
        return self.status == AccountStatus.FROZEN

    def temporary_password_expired(self, now: datetime.datetime | None = None) -> bool:
        """A temporary password past its expiry no longer opens a session."""
        if not self.must_change_password or self.temporary_password_expires_at is None:
            return False
        return (now or timezone.now()) >= self.temporary_password_expires_at


class EmailChangeOutcome(models.TextChoices):
    APPLIED = "applied", _("Applied")
    SUPERSEDED = "superseded", _("Replaced by a newer request")
    VETOED = "vetoed", _("Vetoed by the member (this was not me)")
    CANCELLED = "cancelled", _("Cancelled by the member")
    CLOSED = "closed", _("Cancelled: the account was closed")
    INACTIVE = "inactive", _("Not applied: the account was frozen or closed")


class EmailChangeRequest(models.Model):
    """A change of the address on file, from its request to its outcome.

    Self-service: first a link to confirm goes to the new address; only a SHA-256 of the link's
    token is stored, the token itself exists in the e-mail alone, generated by the worker at send
    time (like temporary passwords). By support: the row starts confirmed (an agent confirmed the
    `EML-`/recovery ticket named by `ticket_reference`).
    Once confirmed the change is *pending*: it applies at `applies_at`
    (`GUICHET_EMAIL_CHANGE_DELAY_HOURS` later), until then the old address can veto it.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="email_changes")
    new_email = models.EmailField(max_length=254)
    token_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    # The new address proved (its link followed) or an agent confirmed: the change is pending.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    applies_at = models.DateTimeField(null=True, blank=True)
    # Support-driven changes: the ticket that decided it (a reference: members sit below tickets).
    ticket_reference = models.CharField(max_length=12, blank=True, default="", editable=False)
    # A recovery with a new address: its codes go to the new address once the change applies.
    codes_after = models.BooleanField(default=False, editable=False)
    language = models.CharField(max_length=8, default="fr", editable=False)
    # Set once: applied, superseded by a newer request, vetoed, cancelled (EmailChangeOutcome).
    used_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        verbose_name = _("e-mail change request")
        verbose_name_plural = _("e-mail change requests")
        indexes = [
            # Following a link: lookup by token hash.
            models.Index(fields=["token_hash"], name="email_change_token_idx"),
            # The beat's "apply the due changes": pending rows by the time they apply.
            models.Index(
                fields=["applies_at"],
                name="email_change_due_idx",
                condition=models.Q(used_at__isnull=True, confirmed_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}:{self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_pending(self) -> bool:
        """Confirmed, not yet applied nor cancelled: waiting for `applies_at`."""
        return self.used_at is None and self.confirmed_at is not None


class StaffTOTPDevice(Device):
    """A staff member's authenticator (TOTP, RFC 6238); the key is kept encrypted at rest.

    django-otp's own TOTPDevice keeps its key in clear: this device stores only a Fernet token of
    it (members/second_factor.py, docs/security.md §40) and refuses any step already used.
    """

    # django-otp is untyped: its Device is Any to mypy, so the fields are annotated here.
    objects: ClassVar[models.Manager[StaffTOTPDevice]]
    encrypted_key: models.TextField[str, str] = models.TextField(editable=False)
    # The last time step accepted: a code of that step or an older one is a replay.
    last_t: models.BigIntegerField[int, int] = models.BigIntegerField(default=-1, editable=False)
    created_at: models.DateTimeField[datetime.datetime, datetime.datetime] = models.DateTimeField(
        default=timezone.now, editable=False
    )

    class Meta(Device.Meta):
        verbose_name = _("authenticator")
        verbose_name_plural = _("authenticators")
        constraints = [
            models.UniqueConstraint(fields=["user"], name="one_totp_device_per_account"),
        ]

    def verify_token(self, token: str) -> bool:
        from members.second_factor import device_verify_token  # the rule lives with its peers

        return device_verify_token(self, token)


class BackupCode(models.Model):
    """One single-use backup code, kept as a keyed hash (members/second_factor.py)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="backup_codes")
    digest = models.CharField(max_length=64, editable=False)
    used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("backup code")
        verbose_name_plural = _("backup codes")
        constraints = [
            models.UniqueConstraint(fields=["account", "digest"], name="backup_code_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}:backup code"


class SecondFactorEventKind(models.TextChoices):
    ENROLLED = "enrolled", _("Authenticator enrolled")
    VERIFIED = "verified", _("Second factor verified")
    BACKUP_USED = "backup_used", _("Backup code used")
    FAILED = "failed", _("Wrong second-factor code")
    LOCKED = "locked", _("Second factor locked")
    STEP_UP = "step_up", _("Second factor confirmed again for a sensitive action")
    RESET = "reset", _("Authenticator reset")


class SecondFactorEventQuerySet(models.QuerySet["SecondFactorEvent"]):
    def update(self, **kwargs: object) -> int:
        raise PermissionError("the second-factor audit log is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("the second-factor audit log is append-only")


class SecondFactorEvent(models.Model):
    """The staff second factor's audit log (append-only): enrolment, success, failure, reset."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    kind = models.CharField(max_length=16, choices=SecondFactorEventKind.choices)
    ip = models.CharField(max_length=45, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = SecondFactorEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("second-factor event")
        verbose_name_plural = _("second-factor events")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "created_at"], name="second_factor_event_idx")]

    def __str__(self) -> str:
        return f"{self.account_id}:{self.kind}:{self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if cast("int | None", self.pk) is not None:
            raise PermissionError("the second-factor audit log is append-only")
        super().save(*args, **kwargs)


class AppendOnlyError(Exception):
    """Access journal rows are never updated or deleted (the retention purge excepted)."""


class AccessKind(models.TextChoices):
    TICKET_VIEW = "ticket_view", _("ticket page viewed")
    MEMBER_VIEW = "member_view", _("registry record viewed")
    REVEAL = "reveal", _("personal data revealed")
    REGISTRY_SEARCH = "registry_search", _("registry searched")


class RevealReason(models.TextChoices):
    IDENTITY_CHECK = "identity_check", _("checking the member's identity for this request")
    MEMBER_ON_PHONE = "member_on_phone", _("the member is on the phone or at the counter")
    REGISTRY_CORRECTION = "registry_correction", _("correcting the registry")
    OTHER = "other", _("other (explain)")


class AccessJournalQuerySet(models.QuerySet["AccessJournalEntry"]):
    def update(self, **kwargs: object) -> int:
        raise AppendOnlyError("the access journal is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("the access journal is append-only")


class AccessJournalEntry(models.Model):
    """One look at a member's file: who, which record, which kind of look, why, when.

    Never the data itself. Append-only like the ticket history (a PostgreSQL trigger refuses
    UPDATE and DELETE; only the retention purge, past `GUICHET_ACCESS_JOURNAL_DAYS`, removes rows).
    """

    actor = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, null=True, blank=True, related_name="access_journal"
    )
    # The ticket is a layer above the registry: its reference, not a foreign key.
    ticket_reference = models.CharField(max_length=32, blank=True, default="")
    kind = models.CharField(max_length=16, choices=AccessKind.choices)
    reason = models.CharField(max_length=32, blank=True, default="", choices=RevealReason.choices)
    reason_text = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = AccessJournalQuerySet.as_manager()

    class Meta:
        verbose_name = _("access journal entry")
        verbose_name_plural = _("access journal entries")
        ordering = ["created_at", "id"]
        indexes = [
            # Export and purge read in (created_at, id) order.
            models.Index(fields=["created_at", "id"], name="access_journal_time_idx"),
            # A member's activity page: the dates staff looked at their file.
            models.Index(fields=["member", "created_at"], name="access_journal_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_id}:{self.kind}:{self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args: object, **kwargs: object) -> None:
        if cast("int | None", self.pk) is not None:
            raise AppendOnlyError("the access journal is append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("the access journal is append-only")
