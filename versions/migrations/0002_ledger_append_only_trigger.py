"""On PostgreSQL, the database itself refuses to change or delete ledger rows.

The ORM and the admin refuse already; this also stops UPDATE and DELETE sent in SQL by any
role that does not own the table. An owner or superuser can still disable the trigger: the
keyed hash chain and the recorded heads catch what they do. TRUNCATE fires no row trigger;
0003 refuses it. SQLite has no such guard.
"""

from django.db import migrations

CREATE = """
CREATE FUNCTION versions_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % of ledger entry % refused', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER versions_ledger_append_only
    BEFORE UPDATE OR DELETE ON versions_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION versions_ledger_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS versions_ledger_append_only ON versions_ledgerentry;
DROP FUNCTION IF EXISTS versions_ledger_append_only();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("versions", "0001_initial")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
