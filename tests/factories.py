"""factory-boy factories for the registry, accounts and tickets."""

from __future__ import annotations

import datetime
import importlib

import factory
from django.contrib.auth.models import Group

from members.models import Account, Coverage, CoverageKind, Member
from tickets.models import Ticket, TicketKind


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member
        django_get_or_create = ("member_number",)
        skip_postgeneration_save = True

    member_number = factory.Sequence(lambda n: f"{500000000 + n}")
    last_name = "Martin"
    first_name = "Zoë"
    birth_date = datetime.date(1980, 4, 12)
    email = factory.LazyAttribute(lambda m: f"m{m.member_number}@example.org")

    @factory.post_generation
    def coverages(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        """Coverage kinds; a principal health insured by default."""
        if not create:
            return
        for kind in extracted if extracted is not None else [CoverageKind.HEALTH_PRINCIPAL]:
            Coverage.objects.get_or_create(member=self, kind=kind)


class MemberAccountFactory(factory.django.DjangoModelFactory):
    """A member's active portal account with a known password."""

    class Meta:
        model = Account
        skip_postgeneration_save = True

    member = factory.SubFactory(MemberFactory)
    username = factory.LazyAttribute(lambda a: a.member.member_number)
    email = factory.LazyAttribute(lambda a: a.member.email)
    first_name = factory.LazyAttribute(lambda a: a.member.first_name)
    last_name = factory.LazyAttribute(lambda a: a.member.last_name)
    password = factory.PostGenerationMethodCall("set_password", "a long member passphrase")

    @factory.post_generation
    def saved(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


def ensure_staff_groups() -> None:
    """Put back what migrations made and a transactional flush removed: content types,
    permissions and the `agents` / `supervisors` groups of tickets' data migrations (idempotent)."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Permission

    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    migration = importlib.import_module("tickets.migrations.0002_groups")
    four_eyes = importlib.import_module("tickets.migrations.0009_four_eyes_approval")
    for name, perms in (
        ("agents", migration.AGENT_PERMISSIONS),
        ("supervisors", migration.SUPERVISOR_PERMISSIONS),
        *four_eyes.APPROVER_PERMISSIONS.items(),
    ):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
                for app_label, codename in perms
            )
        )


class StaffFactory(factory.django.DjangoModelFactory):
    """A staff account in the `agents` group (pass groups=["supervisors"] for a supervisor)."""

    class Meta:
        model = Account
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "staff password 123")

    @factory.post_generation
    def groups(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if not create:
            return
        self.save()
        for name in extracted if extracted is not None else ["agents"]:
            group = Group.objects.filter(name=name).first()
            if group is None:  # a transactional test's flush removed the data migration's groups
                ensure_staff_groups()
                group = Group.objects.get(name=name)
            self.groups.add(group)


class TicketFactory(factory.django.DjangoModelFactory):
    """A pending registration ticket matched to a registry member (no intake side effects)."""

    class Meta:
        model = Ticket

    kind = TicketKind.REGISTRATION
    member = factory.SubFactory(MemberFactory)
    submitted_member_number = factory.LazyAttribute(
        lambda t: t.member.member_number if t.member else ""
    )
    submitted_last_name = factory.LazyAttribute(lambda t: t.member.last_name if t.member else "Doe")
    submitted_first_name = factory.LazyAttribute(
        lambda t: t.member.first_name if t.member else "Jo"
    )
    submitted_birth_date = factory.LazyAttribute(
        lambda t: t.member.birth_date if t.member else datetime.date(1970, 1, 1)
    )
    submitted_email = "typed@example.org"
    match_result = "match"
