"""Public request forms: validate only (never save, never send); shared by the pages and the API."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext_lazy as _

from members.identity_fields import NAME_MAX, BirthDateField, IdentityCleaningMixin

# A public form's one-time token: secrets.token_urlsafe(32) (workflows.services.submissions).
FORM_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")

SECRET_QUESTIONS = [
    ("", _("Choose a question")),
    ("first_school", _("What was the name of your first school?")),
    ("childhood_street", _("In which street did you live as a child?")),
    ("first_pet", _("What was the name of your first pet?")),
    ("parents_meeting_city", _("In which town did your parents meet?")),
    ("favourite_teacher", _("What was the name of your favourite teacher?")),
]


class _IdentityForm(IdentityCleaningMixin, forms.Form):
    """Fields shared by every public request: who the member is and where to write."""

    member_number = forms.CharField(
        label=_("Member ID"),
        required=False,
        max_length=20,
        help_text=_("On your third-party-payment card. Retirees may leave it empty."),
    )
    nir = forms.CharField(
        label=_("Social-security number (if you have no member ID)"),
        required=False,
        max_length=30,
        help_text=_("15 characters: 13 digits and a 2-digit key."),
    )
    last_name = forms.CharField(label=_("Last name"), max_length=NAME_MAX)
    first_name = forms.CharField(label=_("First name"), max_length=NAME_MAX)
    birth_date = BirthDateField(
        label=_("Birth date"), help_text=_("DD/MM/YYYY, for example 31/01/1950.")
    )
    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=254,
        help_text=_("We send your codes there. It is never passed to anyone else."),
    )
    # One-time token issued with the page: a second POST of the same page is the same request.
    form_token = forms.CharField(widget=forms.HiddenInput, required=False, strip=True)

    def clean_form_token(self) -> str:
        """A malformed or missing token only turns off the double-submit guard: never an error."""
        value = self.cleaned_data["form_token"]
        return value if FORM_TOKEN_RE.fullmatch(value) else ""

    def clean_email(self) -> str:
        value: str = self.cleaned_data["email"]
        if any(c in value for c in "\r\n"):
            raise ValidationError(EmailValidator.message, code="invalid")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors and not cleaned.get("member_number") and not cleaned.get("nir"):
            raise ValidationError(
                _("Give your member ID or, if you do not have one, your social-security number."),
                code="identifier_required",
            )
        return cleaned


class RegistrationForm(_IdentityForm):
    """Activate my account (docs/interfaces.md field names)."""

    secret_question = forms.ChoiceField(label=_("Secret question"), choices=SECRET_QUESTIONS)
    secret_answer = forms.CharField(
        label=_("Answer to the secret question"),
        max_length=100,
        min_length=2,
        # Never echoed back into the page when the form returns with an error.
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Used if you lose your codes. Case and accents do not count."),
    )
    accept_terms = forms.BooleanField(
        label=_("I accept the terms of use of the client area"),
        error_messages={"required": _("You must accept the terms of use to register.")},
    )

    def clean_secret_answer(self) -> str:
        value: str = self.cleaned_data["secret_answer"]
        if any(ord(c) < 32 for c in value):
            raise ValidationError(_("Use ordinary characters only."), code="invalid")
        return value


def _clean_answer(value: str) -> str:
    if any(ord(c) < 32 for c in value):
        raise ValidationError(_("Use ordinary characters only."), code="invalid")
    return value


def _clean_address(value: str) -> str:
    if any(c in value for c in "\r\n"):
        raise ValidationError(EmailValidator.message, code="invalid")
    return value


class RecoveryForm(_IdentityForm):
    """Forgotten codes: codes go to the e-mail on file; `email` only receives the acknowledgment.

    With "my e-mail no longer works", the new address and the secret answer are given; the new
    address replaces the one on file only if the answer was right and an agent confirms.
    """

    email_lost = forms.BooleanField(label=_("My e-mail address no longer works"), required=False)
    new_email = forms.EmailField(
        label=_("New e-mail address"),
        required=False,
        max_length=254,
        help_text=_("Only if your e-mail address no longer works."),
    )
    secret_answer = forms.CharField(
        label=_("Answer to your secret question"),
        required=False,
        max_length=100,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Only if your e-mail address no longer works. Case and accents do not count."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].label = _("E-mail address to acknowledge this request")
        self.fields["email"].help_text = _(
            "We confirm receipt there. New codes are always sent to the e-mail address on file "
            "with your account."
        )

    def clean_new_email(self) -> str:
        return _clean_address(self.cleaned_data["new_email"])

    def clean_secret_answer(self) -> str:
        return _clean_answer(self.cleaned_data["secret_answer"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        if cleaned.get("email_lost") or cleaned.get("new_email"):
            if not cleaned.get("new_email"):
                self.add_error("new_email", _("Give the new e-mail address."))
            if len(cleaned.get("secret_answer", "").strip()) < 2:
                self.add_error("secret_answer", _("Give the answer to your secret question."))
        else:
            cleaned["secret_answer"] = ""
        return cleaned


# topic -> ticket kind (tickets.models.TicketKind values).
SUPPORT_TOPICS = {
    "codes_never_received": "ACC",
    "cannot_log_in": "ACC",
    "close_account": "CLO",
    "email_changed": "EML",
}
SUPPORT_TOPIC_CHOICES = [
    ("", _("Choose what your message is about")),
    ("codes_never_received", _("I never received my codes")),
    ("cannot_log_in", _("I cannot log in")),
    ("close_account", _("Close my account")),
    ("email_changed", _("My e-mail changed and I cannot answer my secret question")),
]


class SupportForm(_IdentityForm):
    """Write to support: identity, the problem, a message (and the new address for EML)."""

    topic = forms.ChoiceField(label=_("Your request"), choices=SUPPORT_TOPIC_CHOICES)
    new_email = forms.EmailField(
        label=_("New e-mail address"),
        required=False,
        max_length=254,
        help_text=_("Only if your e-mail address changed."),
    )
    message = forms.CharField(
        label=_("Your message"), max_length=5000, widget=forms.Textarea(attrs={"rows": 6})
    )
    field_order = ["topic", "member_number", "nir", "last_name", "first_name", "birth_date"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].label = _("E-mail address where we can reach you")
        self.fields["email"].help_text = _("We confirm receipt of your message there.")

    def clean_new_email(self) -> str:
        return _clean_address(self.cleaned_data["new_email"])

    def clean_message(self) -> str:
        value: str = self.cleaned_data["message"]
        if "\x00" in value:
            raise ValidationError(_("Use ordinary characters only."), code="invalid")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        if cleaned.get("topic") == "email_changed":
            if not cleaned.get("new_email"):
                self.add_error("new_email", _("Give the new e-mail address."))
        else:
            cleaned["new_email"] = ""
        cleaned["kind"] = SUPPORT_TOPICS.get(cleaned.get("topic", ""), "")
        return cleaned
