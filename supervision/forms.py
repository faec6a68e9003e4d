"""Supervisors' forms: they validate, never save."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from supervision.filters import staff_accounts
from supervision.services import BULK_LIMIT
from tickets.models import REFERENCE_REGEX

if TYPE_CHECKING:
    from members.models import Account

_REFERENCE = re.compile(rf"^{REFERENCE_REGEX}$")


class ReferenceListField(forms.Field):
    """Ticket references from repeated `reference` inputs (checkboxes)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        if not value:
            return []
        if isinstance(value, str):
            value = [value]
        references = [str(v).strip().upper() for v in value]
        if len(references) > BULK_LIMIT:
            raise ValidationError(_("Select at most %(n)s tickets."), params={"n": BULK_LIMIT})
        if any(not _REFERENCE.match(r) for r in references):
            raise ValidationError(_("Unknown ticket reference."))
        return list(dict.fromkeys(references))


class ReassignForm(forms.Form):
    """Whom to give the tickets to, and which: the ones ticked or all that match the filter."""

    SELECTED = "selected"
    FILTERED = "filtered"

    assignee = forms.ModelChoiceField(
        queryset=staff_accounts(), to_field_name="username", label=_("Give to")
    )
    scope = forms.ChoiceField(
        choices=[(SELECTED, _("The tickets ticked")), (FILTERED, _("All open tickets shown"))],
        initial=SELECTED,
    )
    reference = ReferenceListField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assignee = cast("forms.ModelChoiceField[Account]", self.fields["assignee"])
        assignee.queryset = staff_accounts()

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what BaseForm.clean returns, typed as never None
        if data.get("scope") == self.SELECTED and not data.get("reference"):
            raise ValidationError(_("Tick at least one ticket."))
        return data
