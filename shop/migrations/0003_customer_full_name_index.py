"""Expand, continued: the index on `full_name` (docs/migrations.md).

On PostgreSQL it is built CONCURRENTLY: the customers stay writable while it builds, which a
plain CREATE INDEX would block. That cannot run inside a transaction, so this migration is
not atomic and holds nothing else. A build that stopped (a timeout) leaves an invalid index:
the next run drops it and builds again. SQLite (the demo) builds it plainly.
"""

from django.db import migrations, models

INDEX = models.Index(
    condition=models.Q(("deleted_at__isnull", True)),
    fields=["full_name"],
    name="shop_customer_full_name_live",
)
CREATE = (
    'CREATE INDEX {concurrently} IF NOT EXISTS "shop_customer_full_name_live" '
    'ON "shop_customer" ("full_name") WHERE "deleted_at" IS NULL'
)
DROP = 'DROP INDEX {concurrently} IF EXISTS "shop_customer_full_name_live"'


def _concurrently(schema_editor):
    return "CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT NOT indisvalid FROM pg_index "
                "WHERE indexrelid = to_regclass('shop_customer_full_name_live')"
            )
            invalid = cursor.fetchone()
        if invalid and invalid[0]:
            drop_index(apps, schema_editor)
    schema_editor.execute(CREATE.format(concurrently=_concurrently(schema_editor)), params=None)


def drop_index(apps, schema_editor):
    schema_editor.execute(DROP.format(concurrently=_concurrently(schema_editor)), params=None)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run inside a transaction
    dependencies = [("shop", "0002_customer_full_name_expand")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="customer", index=INDEX)],
            database_operations=[migrations.RunPython(create_index, drop_index)],
        ),
    ]
