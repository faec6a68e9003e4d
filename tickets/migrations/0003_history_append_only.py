"""PostgreSQL: the history table refuses row UPDATE and DELETE whoever asks (docs/security.md §30).

TRUNCATE is left to privileges (the test runner flushes tables with it); see README.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION tickets_ticketevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ticket history is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tickets_ticketevent_no_update_delete
    BEFORE UPDATE OR DELETE ON tickets_ticketevent
    FOR EACH ROW EXECUTE FUNCTION tickets_ticketevent_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS tickets_ticketevent_no_update_delete ON tickets_ticketevent;
DROP FUNCTION IF EXISTS tickets_ticketevent_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # params=None: the SQL holds a literal '%' that psycopg must not read as a placeholder.
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("tickets", "0002_groups")]
    operations = [migrations.RunPython(forward, backward)]
