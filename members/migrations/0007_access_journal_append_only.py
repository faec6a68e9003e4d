"""PostgreSQL: the access journal refuses UPDATE always, and DELETE unless the retention purge
asks for it inside its own transaction (`SET LOCAL guichet.access_journal_purge = 'on'`).

Like the ticket history (tickets 0003_history_append_only); TRUNCATE is left to privileges.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION members_accessjournal_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('guichet.access_journal_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'access journal is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER members_accessjournal_no_update_delete
    BEFORE UPDATE OR DELETE ON members_accessjournalentry
    FOR EACH ROW EXECUTE FUNCTION members_accessjournal_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS members_accessjournal_no_update_delete ON members_accessjournalentry;
DROP FUNCTION IF EXISTS members_accessjournal_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # params=None: the SQL holds a literal '%' that psycopg must not read as a placeholder.
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("members", "0006_access_journal")]
    operations = [migrations.RunPython(forward, backward)]
