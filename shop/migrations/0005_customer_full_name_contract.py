"""Contract: customer `name` becomes `full_name`, step 4 of 4 (docs/migrations.md).

Refuses to run while a row still has a `name` and no `full_name` (the backfill has not
finished): dropping `name` then would lose those names. Otherwise drops the trigger of 0002
and the `name` columns. Reversed, it adds `name` back and fills it from `full_name`.
`full_name` becomes required, as `name` was, in 0006: without a long lock, which needs a
migration of its own.
"""

import importlib

from django.core.management import CommandError
from django.db import migrations, models

TABLES = ("shop_customer", "shop_historicalcustomer")

BACKFILL = (
    "python manage.py backfill shop.{model} full_name --from name "
    "--as-of 0002_customer_full_name_expand"
)


def refuse_unless_backfilled(apps, schema_editor):
    """Stop the migration, with what to run, while any row lacks its full_name."""
    quote = schema_editor.quote_name
    missing = {}
    with schema_editor.connection.cursor() as cursor:
        for table, model in zip(TABLES, ("Customer", "HistoricalCustomer"), strict=True):
            cursor.execute(f"SELECT COUNT(*) FROM {quote(table)} WHERE {quote('full_name')} IS NULL")
            count = cursor.fetchone()[0]
            if count:
                missing[model] = count
    if missing:
        rows = ", ".join(f"{count} in shop.{model}" for model, count in missing.items())
        commands = "\n  ".join(BACKFILL.format(model=model) for model in missing)
        raise CommandError(
            f"Not dropping the customer's name column: rows without a full_name ({rows}) "
            "would lose their names. Run the backfill first, then migrate again:\n"
            f"  {commands}"
        )


def name_from_full_name(apps, schema_editor):
    """Reversed: the re-added name column gets the full names back."""
    quote = schema_editor.quote_name
    for table in TABLES:
        schema_editor.execute(
            f"UPDATE {quote(table)} SET {quote('name')} = {quote('full_name')} "
            f"WHERE {quote('name')} IS NULL",
            params=None,
        )


def _expand():
    """The expand migration, whose trigger this one drops (and re-creates when reversed)."""
    return importlib.import_module("shop.migrations.0002_customer_full_name_expand")


def drop_sync_trigger(apps, schema_editor):
    _expand().drop_sync_trigger(apps, schema_editor)


def create_sync_trigger(apps, schema_editor):
    _expand().create_sync_trigger(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("shop", "0004_customer_full_name_code_switch")]

    operations = [
        migrations.RunPython(refuse_unless_backfilled, name_from_full_name),
        migrations.RunPython(drop_sync_trigger, create_sync_trigger),
        # The column and its index are gone from Django's state since 0004: plain SQL, the
        # same on PostgreSQL and SQLite (3.35 and later).
        migrations.RunSQL(
            sql=[
                'DROP INDEX IF EXISTS "shop_customer_name_live"',
                'ALTER TABLE "shop_customer" DROP COLUMN "name"',
                'ALTER TABLE "shop_historicalcustomer" DROP COLUMN "name"',
            ],
            reverse_sql=[
                'ALTER TABLE "shop_customer" ADD COLUMN "name" varchar(200) NULL',
                'ALTER TABLE "shop_historicalcustomer" ADD COLUMN "name" varchar(200) NULL',
                'CREATE INDEX "shop_customer_name_live" ON "shop_customer" ("name") '
                'WHERE "deleted_at" IS NULL',
            ],
        ),
    ]
