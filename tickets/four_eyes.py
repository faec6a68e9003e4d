"""Four-eyes: which confirmations need a second, different staff member, in one place.

A confirmation is *risky* when one person's decision alone could hand an account to someone the
registry cannot vouch for. `confirmation_risks(ticket)` names the reasons; the state machine
(`Ticket.confirm` / `Ticket.request_approval`, tickets/models.py) reads it as a guard, so every
entry point (desk, bulk, admin, command, API) obeys the same rule (docs/product.md, "Four-eyes
on risky confirmations"; docs/security.md §34).

Adding a reason: write one `_rule(ticket) -> bool` below, add it to `RULES` with its code and
label. `settings.GUICHET_FOUR_EYES = "all"` widens the rule to every confirmation; nothing
narrows it.

The approver: staff with `tickets.approve_ticket` who is not the maker (`may_approve`) — not even
a supervisor or a superuser may approve their own confirmation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from members.models import Account

if TYPE_CHECKING:
    from tickets.models import Ticket

APPROVE_PERMISSION = "tickets.approve_ticket"

# Channels where a staff member typed the request for someone they could not see.
_STAFF_TYPED_CHANNELS = frozenset({"phone", "letter", "email"})


def _codes_to_an_address_not_on_file(ticket: Ticket) -> bool:
    """Recovery (or access) whose codes would go to a new address rather than the one on file."""
    if ticket.kind not in ("REC", "ACC"):
        return False
    if not (ticket.requested_email and ticket.secret_answer_verified):
        return False  # the codes go to the address on file (workflows.services.decisions)
    on_file = (
        Account.objects.filter(member_id=ticket.member_id).values_list("email", flat=True).first()
        if ticket.member_id is not None
        else None
    )
    return on_file is None or on_file.casefold() != ticket.requested_email.casefold()


def _account_closure(ticket: Ticket) -> bool:
    return ticket.kind == "CLO"


def _email_change_through_support(ticket: Ticket) -> bool:
    # Members change their own e-mail at /account/email/ (password + link); a ticket of this kind
    # is always a change asked through support or recorded by staff on someone's behalf.
    return ticket.kind == "EML"


def _identity_mismatch_overridden(ticket: Ticket) -> bool:
    return bool(ticket.state == "identity_mismatch")


def _typed_by_staff(ticket: Ticket) -> bool:
    return ticket.channel in _STAFF_TYPED_CHANNELS


def _high_risk_signal(ticket: Ticket) -> bool:
    """The takeover signals weighed at intake reached "high" (workflows/risk.py)."""
    return ticket.is_high_risk


def _every_confirmation(ticket: Ticket) -> bool:
    return bool(settings.GUICHET_FOUR_EYES == "all")


# code -> (rule, label shown on the ticket page and in the history). Order = display order.
RULES: dict[str, tuple[Callable[[Ticket], bool], Promise]] = {
    "identity_mismatch": (
        _identity_mismatch_overridden,
        _("The identity did not match the registry"),
    ),
    "address_not_on_file": (
        _codes_to_an_address_not_on_file,
        _("Codes would go to an address other than the one on file"),
    ),
    "account_closure": (_account_closure, _("The account would be closed")),
    "email_change": (_email_change_through_support, _("The e-mail on file would change")),
    "staff_typed": (_typed_by_staff, _("Received by phone, letter or e-mail")),
    "high_risk": (_high_risk_signal, _("High risk signals")),
    "every_confirmation": (_every_confirmation, _("Every confirmation needs two people here")),
}


def confirmation_risks(ticket: Ticket) -> list[str]:
    """The codes of the reasons why confirming `ticket` needs a second person ([] = none)."""
    return [code for code, (rule, _label) in RULES.items() if rule(ticket)]


def risk_labels(codes: list[str]) -> list[str]:
    """The readable labels of risk codes (unknown codes, from older rows, shown as they are)."""
    return [str(RULES[code][1]) if code in RULES else code for code in codes]


def needs_approval(ticket: Ticket) -> bool:
    return bool(confirmation_risks(ticket))


def is_maker(ticket: Ticket, user: Account) -> bool:
    """Whether `user` asked for this approval (they may never give it)."""
    maker_id = ticket.approval_requested_by_id
    return maker_id is not None and maker_id == user.pk


def may_approve(ticket: Ticket, user: Account) -> bool:
    """Permission of `approve` and `send_back`: an approver who is not the maker."""
    return may_approve_any(user) and not is_maker(ticket, user)


def may_approve_any(user: Account) -> bool:
    """Whether `user` approves others' risky confirmations at all (the desk's approval queue)."""
    return bool(user.is_active and user.has_perm(APPROVE_PERMISSION))
