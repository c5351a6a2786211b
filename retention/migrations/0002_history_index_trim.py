"""The history indexes of holds and policies trimmed as `shop/0007_history_index_trim` explains,
by the same operation."""

from django.conf import settings
from django.db import migrations

from operations.migration_operations import TrimHistoryIndexes


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run inside a transaction

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("retention", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        TrimHistoryIndexes(
            indexes={
                "historicallegalhold": "h_legalhold_870751",
                "historicalretentionpolicy": "h_retentionpolic_cb70e7",
            },
            unindexed={"historicallegalhold": ["placed_by", "released_by"]},
        ),
    ]
