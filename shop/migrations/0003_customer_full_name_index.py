"""Expand, continued: the index on `full_name` (docs/migrations.md).

On PostgreSQL it is built CONCURRENTLY: the customers stay writable while it builds, which a
plain CREATE INDEX would block. That cannot run inside a transaction, so this migration is
not atomic and holds nothing else. A build that stopped (a timeout) leaves an invalid index:
the next run drops it and builds again. SQLite (the demo) builds it plainly.
"""

from django.db import migrations, models

from operations.migration_operations import AddIndexConcurrently

INDEX = models.Index(
    condition=models.Q(("deleted_at__isnull", True)),
    fields=["full_name"],
    name="shop_customer_full_name_live",
)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run inside a transaction
    dependencies = [("shop", "0002_customer_full_name_expand")]

    operations = [AddIndexConcurrently(model_name="customer", index=INDEX)]
