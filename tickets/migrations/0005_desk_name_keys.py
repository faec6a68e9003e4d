"""Fill Ticket.last_name_key/first_name_key for existing rows; index member names for LIKE prefix.

The registry's (last_name_key, first_name_key) index uses the default operator class, which
PostgreSQL can use for `LIKE 'prefix%'` only under the C collation; the desk's member search
(`/desk/members/`, `last_name_key LIKE 'prefix%'`) needs the pattern operator class whatever
the collation. PostgreSQL only: SQLite uses its own index rules for LIKE.
"""

from django.db import migrations

from members.names import normalise_name

MEMBER_INDEX = (
    "CREATE INDEX IF NOT EXISTS member_name_key_pattern_idx ON members_member "
    "(last_name_key varchar_pattern_ops, first_name_key varchar_pattern_ops)"
)
DROP_MEMBER_INDEX = "DROP INDEX IF EXISTS member_name_key_pattern_idx"
BATCH = 2000


def fill_name_keys(apps, schema_editor):
    Ticket = apps.get_model("tickets", "Ticket")
    rows = Ticket.objects.filter(last_name_key="").exclude(submitted_last_name="").order_by("pk")
    last_pk = 0
    while True:
        batch = list(
            rows.filter(pk__gt=last_pk).only("pk", "submitted_last_name", "submitted_first_name")[
                :BATCH
            ]
        )
        if not batch:
            break
        for ticket in batch:
            ticket.last_name_key = normalise_name(ticket.submitted_last_name)[:150]
            ticket.first_name_key = normalise_name(ticket.submitted_first_name)[:150]
        Ticket.objects.bulk_update(batch, ["last_name_key", "first_name_key"])
        last_pk = batch[-1].pk


def add_member_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(MEMBER_INDEX)


def drop_member_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_MEMBER_INDEX)


class Migration(migrations.Migration):
    dependencies = [("tickets", "0004_desk_search_indexes")]
    operations = [
        migrations.RunPython(fill_name_keys, migrations.RunPython.noop),
        migrations.RunPython(add_member_index, drop_member_index),
    ]
