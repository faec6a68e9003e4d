"""PostgreSQL: the one way past the append-only history trigger — `archive_history` dropping the
whole chains of decided tickets it has just exported (docs/operations.md, "Archiving the history").

The trigger still refuses every UPDATE, and every DELETE, unless the transaction-local setting
`guichet.history_archive` is 'on' AND the row's ticket is decided (confirmed or rejected). Only
the function `tickets_history_archive_drop(ticket_ids)` sets it, for the one DELETE it runs, and
resets it before returning: an ordinary DELETE (the application, psql, the admin) is refused as
before, and even the archive path can never drop an open ticket's history.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION tickets_ticketevent_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('guichet.history_archive', true) = 'on'
       AND EXISTS (
           SELECT 1 FROM tickets_ticket
           WHERE id = OLD.ticket_id AND state IN ('confirmed', 'rejected')
       ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'ticket history is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tickets_history_archive_drop(ticket_ids bigint[]) RETURNS bigint AS $$
DECLARE
    dropped bigint;
BEGIN
    PERFORM set_config('guichet.history_archive', 'on', true);
    DELETE FROM tickets_ticketevent WHERE ticket_id = ANY(ticket_ids);
    GET DIAGNOSTICS dropped = ROW_COUNT;
    PERFORM set_config('guichet.history_archive', '', true);
    RETURN dropped;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public;
"""

BACKWARD = """
DROP FUNCTION IF EXISTS tickets_history_archive_drop(bigint[]);
CREATE OR REPLACE FUNCTION tickets_ticketevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ticket history is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # params=None: the SQL holds a literal '%' that psycopg must not read as a placeholder.
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("tickets", "0009_four_eyes_approval")]
    operations = [migrations.RunPython(forward, backward)]
