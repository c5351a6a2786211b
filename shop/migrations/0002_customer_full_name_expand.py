"""Expand: customer `name` becomes `full_name`, step 1 of 4 (docs/migrations.md).

Adds `full_name` beside `name`, nullable, on the customer and its history table (its index
follows in 0003, built without blocking writes), and lets `name` be null (code that knows
only `full_name` no longer writes it). On PostgreSQL a trigger keeps the two columns in step
while old and new code both run: a row written with one gets the other, and an update of one
is copied to the other. Rows written before this migration are copied by `manage.py
backfill` (step 2), not here: a table rewrite inside a migration would hold its lock for as
long as the copy takes.
"""

from django.db import migrations, models

TABLES = ("shop_customer", "shop_historicalcustomer")

FUNCTION = """
CREATE OR REPLACE FUNCTION shop_customer_name_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- One column changed: the writer knows only that one; copy it to the other.
        IF NEW.name IS DISTINCT FROM OLD.name
                AND NEW.full_name IS NOT DISTINCT FROM OLD.full_name THEN
            NEW.full_name := NEW.name;
        ELSIF NEW.full_name IS DISTINCT FROM OLD.full_name
                AND NEW.name IS NOT DISTINCT FROM OLD.name THEN
            NEW.name := NEW.full_name;
        END IF;
    END IF;
    -- Whichever is missing is filled from the other (inserts, and rows not yet backfilled).
    IF NEW.full_name IS NULL AND NEW.name IS NOT NULL THEN
        NEW.full_name := NEW.name;
    ELSIF NEW.name IS NULL AND NEW.full_name IS NOT NULL THEN
        NEW.name := NEW.full_name;
    END IF;
    RETURN NEW;
END
$$;
"""
TRIGGER = """
CREATE TRIGGER shop_customer_name_sync BEFORE INSERT OR UPDATE ON {table}
    FOR EACH ROW EXECUTE FUNCTION shop_customer_name_sync();
"""
DROP_TRIGGER = "DROP TRIGGER IF EXISTS shop_customer_name_sync ON {table};"
DROP_FUNCTION = "DROP FUNCTION IF EXISTS shop_customer_name_sync();"


def create_sync_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)
        for table in TABLES:
            schema_editor.execute(TRIGGER.format(table=table), params=None)


def drop_sync_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(DROP_TRIGGER.format(table=table), params=None)
        schema_editor.execute(DROP_FUNCTION, params=None)


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="full_name",
            field=models.CharField(max_length=200, null=True),
        ),
        migrations.AddField(
            model_name="historicalcustomer",
            name="full_name",
            field=models.CharField(max_length=200, null=True),
        ),
        migrations.AlterField(
            model_name="customer",
            name="name",
            field=models.CharField(max_length=200, null=True),
        ),
        migrations.AlterField(
            model_name="historicalcustomer",
            name="name",
            field=models.CharField(max_length=200, null=True),
        ),
        migrations.RunPython(create_sync_trigger, drop_sync_trigger),
    ]
