"""Contract, continued: `full_name` becomes required, as `name` was (docs/migrations.md).

`SET NOT NULL` alone would read every customer under an exclusive lock, stopping the site
for the length of the scan. `SetNotNull` validates a `CHECK (full_name IS NOT NULL)` first,
under a lock that lets writes go on, and PostgreSQL then sets NOT NULL without a scan. Each
step commits on its own, so the migration is not atomic and holds nothing else; a column
already NOT NULL is left as it is. SQLite (the demo) alters the column plainly.
"""

from django.db import migrations, models

from operations.migration_operations import SetNotNull


class Migration(migrations.Migration):
    atomic = False  # each step of SetNotNull commits on its own
    dependencies = [("shop", "0005_customer_full_name_contract")]

    operations = [
        SetNotNull(
            model_name="customer",
            name="full_name",
            field=models.CharField(max_length=200),
        ),
        SetNotNull(
            model_name="historicalcustomer",
            name="full_name",
            field=models.CharField(max_length=200),
        ),
    ]
