"""Ledger keys, checkpoints, whole reasons; on PostgreSQL, TRUNCATE of the ledger refused.

Entries carry the id of the key that signed them, so LEDGER_SECRET can be rotated; reasons
are text of any length; checkpoints record the head after every append and verification.

TRUNCATE fires no row trigger, so migration 0002 could not stop it: a statement trigger
now refuses TRUNCATE of the entries and of the checkpoints (whose rows are protected
against UPDATE and DELETE like the entries).

One exception is needed: Django's test flush empties every table with one TRUNCATE
(transactional tests, live_server, worker tests) and would fail. The trigger lets TRUNCATE
through only when the *database* (not a session) carries the setting
`versions.ledger_truncate = 'allow'`, as `ALTER DATABASE <name> SET` stores it in
pg_db_role_setting. The test suite sets it on its throw-away test database (the
`django_db_setup` fixture in tests/conftest.py); no production database ever has it.
A session-level `SET versions.ledger_truncate` is ignored on purpose: any role may set a
custom parameter for its own session, whereas only the database's owner or a superuser can
`ALTER DATABASE` — and they could disable the trigger anyway. What they do is then caught
by the keyed chain, the checkpoints and the head kept outside the database.
"""

from django.db import migrations, models

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION versions_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % of % row % refused',
        TG_OP, TG_TABLE_NAME, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""

APPEND_ONLY_0002 = """
CREATE OR REPLACE FUNCTION versions_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % of ledger entry % refused', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""

CREATE = """
CREATE FUNCTION versions_ledger_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1
        FROM pg_catalog.pg_db_role_setting s
        JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
        WHERE d.datname = current_database()
          AND s.setrole = 0
          AND 'versions.ledger_truncate=allow' = ANY (s.setconfig)
    ) THEN
        RETURN NULL;  -- a test database: let the test flush through
    END IF;
    RAISE EXCEPTION 'the ledger is append-only: TRUNCATE of % refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER versions_ledger_no_truncate
    BEFORE TRUNCATE ON versions_ledgerentry
    FOR EACH STATEMENT EXECUTE FUNCTION versions_ledger_no_truncate();
CREATE TRIGGER versions_ledgercheckpoint_no_truncate
    BEFORE TRUNCATE ON versions_ledgercheckpoint
    FOR EACH STATEMENT EXECUTE FUNCTION versions_ledger_no_truncate();
CREATE TRIGGER versions_ledgercheckpoint_append_only
    BEFORE UPDATE OR DELETE ON versions_ledgercheckpoint
    FOR EACH ROW EXECUTE FUNCTION versions_ledger_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS versions_ledgercheckpoint_append_only ON versions_ledgercheckpoint;
DROP TRIGGER IF EXISTS versions_ledgercheckpoint_no_truncate ON versions_ledgercheckpoint;
DROP TRIGGER IF EXISTS versions_ledger_no_truncate ON versions_ledgerentry;
DROP FUNCTION IF EXISTS versions_ledger_no_truncate();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ('versions', '0002_ledger_append_only_trigger'),
    ]

    operations = [
        migrations.AddField(
            model_name='ledgerentry',
            name='key_id',
            field=models.CharField(default='', help_text='Fingerprint of the ledger key that signed the entry.', max_length=16),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='reason',
            field=models.TextField(blank=True),
        ),
        migrations.CreateModel(
            name='LedgerCheckpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField()),
                ('kind', models.CharField(choices=[('append', 'Append'), ('verification', 'Verification')], max_length=16)),
                ('entry_id', models.BigIntegerField(help_text='Id of the head entry; 0 for an empty ledger.')),
                ('head', models.CharField(max_length=64)),
                ('key_id', models.CharField(max_length=16)),
                ('mac', models.CharField(max_length=64)),
                ('actor_label', models.CharField(max_length=150)),
                ('channel', models.CharField(blank=True, max_length=150)),
                ('reason', models.TextField(blank=True)),
            ],
            options={
                'ordering': ['-id'],
                'indexes': [models.Index(fields=['entry_id', 'id'], name='ledger_checkpoint_head_idx')],
            },
        ),
        migrations.RunPython(_on_postgresql(APPEND_ONLY), _on_postgresql(APPEND_ONLY_0002)),
        migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP)),
    ]
