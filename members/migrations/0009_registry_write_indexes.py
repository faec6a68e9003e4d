"""Two registry indexes that every registry write maintained and no query reads.

- `members_coverage.member_id`'s own index: the unique (member_id, kind) constraint's index
  starts with member_id and serves every lookup by member.
- `member_number`'s `varchar_pattern_ops` index, which Django adds on PostgreSQL beside the
  unique index of a CharField for `LIKE 'prefix%'`: member IDs are only ever looked up whole
  (the unique index), and the admin's search (`icontains`) cannot use it. Django would add it
  again if the field were altered; a later migration altering `member_number` must drop it
  again.
"""

import django.db.models.deletion
from django.db import migrations, models


def _member_number_like_index(schema_editor):
    return schema_editor._create_index_name("members_member", ["member_number"], suffix="_like")


def drop_member_number_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        name = _member_number_like_index(schema_editor)
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def add_member_number_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        name = _member_number_like_index(schema_editor)
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "members_member" '
            '("member_number" varchar_pattern_ops)'
        )


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0008_email_change_waits"),
    ]

    operations = [
        migrations.AlterField(
            model_name="coverage",
            name="member",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="coverages",
                to="members.member",
            ),
        ),
        migrations.RunPython(drop_member_number_like_index, add_member_number_like_index),
    ]
