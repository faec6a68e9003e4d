"""Desk forms: validate only (the views call services)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from members.identity_fields import BirthDateField, IdentityCleaningMixin
from members.models import RevealReason
from tickets.models import Channel, RejectionReason, SendBackReason, TicketKind

REJECTION_CHOICES = [(v, label) for v, label in RejectionReason.choices if v != "expired"]
# An agent records what came by another way than the web form.
OFF_WEB_CHANNELS = [(v, label) for v, label in Channel.choices if v != Channel.WEB]


class RejectForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"), choices=[("", "—"), *REJECTION_CHOICES])
    comment = forms.CharField(
        label=_("Comment (internal)"), required=False, max_length=2000, widget=forms.Textarea
    )


class SendBackForm(forms.Form):
    """An approver sends a risky confirmation back (four-eyes): a reason is required."""

    reason = forms.ChoiceField(label=_("Reason"), choices=[("", "—"), *SendBackReason.choices])
    comment = forms.CharField(
        label=_("Comment (internal)"), required=False, max_length=2000, widget=forms.Textarea
    )


class CommentForm(forms.Form):
    comment = forms.CharField(
        label=_("Comment (internal)"), required=False, max_length=2000, widget=forms.Textarea
    )


class NoteForm(forms.Form):
    body = forms.CharField(label=_("Note"), max_length=5000, widget=forms.Textarea)


class RevealForm(forms.Form):
    """Why the agent needs the masked NIR and birth date: a reason from the list, or free text."""

    reason = forms.ChoiceField(label=_("Why do you need them?"), choices=RevealReason.choices)
    reason_text = forms.CharField(label=_("Explain"), required=False, max_length=200)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("reason") == RevealReason.OTHER and not data.get("reason_text", "").strip():
            raise ValidationError(_("Explain why you need to see the data."), code="no_reason")
        return data


class SearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)


class OnBehalfForm(IdentityCleaningMixin, forms.Form):
    """A request received by letter, phone or e-mail, typed in by an agent."""

    kind = forms.ChoiceField(label=_("Kind of request"), choices=TicketKind.choices)
    channel = forms.ChoiceField(label=_("Received by"), choices=OFF_WEB_CHANNELS)
    member_number = forms.CharField(label=_("Member ID"), required=False, max_length=20)
    nir = forms.CharField(label=_("Social-security number"), required=False, max_length=30)
    last_name = forms.CharField(label=_("Last name"), max_length=150)
    first_name = forms.CharField(label=_("First name"), max_length=150)
    birth_date = BirthDateField(label=_("Birth date"), required=False, help_text=_("DD/MM/YYYY"))
    email = forms.EmailField(
        label=_("Member's e-mail address"),
        max_length=254,
        help_text=_("The acknowledgment and the outcome are sent there."),
    )
    requested_email = forms.EmailField(
        label=_("New e-mail address (e-mail change)"), required=False, max_length=254
    )
    message = forms.CharField(
        label=_("What the member asked"), required=False, max_length=5000, widget=forms.Textarea
    )
    note = forms.CharField(
        label=_("Internal note"), required=False, max_length=5000, widget=forms.Textarea
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        if not cleaned.get("member_number") and not cleaned.get("nir"):
            raise ValidationError(
                _("Give the member ID or the social-security number."), code="identifier_required"
            )
        if cleaned.get("kind") == TicketKind.EMAIL_CHANGE and not cleaned.get("requested_email"):
            self.add_error("requested_email", _("An e-mail change needs the new address."))
        return cleaned
