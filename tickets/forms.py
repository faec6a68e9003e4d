"""Desk action forms."""

from django import forms
from django.utils.translation import gettext_lazy as _

from tickets.models import RejectionReason

REJECTION_CHOICES = [(v, label) for v, label in RejectionReason.choices if v != "expired"]


class RejectForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"), choices=REJECTION_CHOICES)
    comment = forms.CharField(
        label=_("Comment (internal)"), required=False, max_length=2000, widget=forms.Textarea
    )


class CommentForm(forms.Form):
    comment = forms.CharField(
        label=_("Comment (internal)"), required=False, max_length=2000, widget=forms.Textarea
    )


class NoteForm(forms.Form):
    body = forms.CharField(label=_("Note"), max_length=5000, widget=forms.Textarea)
