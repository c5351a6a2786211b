"""Code switch: customer `name` becomes `full_name`, step 3 of 4 (docs/migrations.md).

The release whose code reads and writes only `full_name` ships this migration. It changes
Django's idea of the model, not the database: `name` and its index stay in the tables (the
trigger of 0002 still fills `name`, for any old code still running) until the contract
step drops them.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0003_customer_full_name_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="customer", name="shop_customer_name_live"),
                migrations.RemoveField(model_name="customer", name="name"),
                migrations.RemoveField(model_name="historicalcustomer", name="name"),
                migrations.AlterModelOptions(
                    name="customer",
                    options={
                        "ordering": ["full_name"],
                        "abstract": False,
                        "default_permissions": (
                            "add",
                            "change",
                            "delete",
                            "view",
                            "view_deleted",
                            "hard_delete",
                        ),
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
