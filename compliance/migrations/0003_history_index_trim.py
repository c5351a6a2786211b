"""The history indexes of consents and requests trimmed as `shop/0007_history_index_trim` explains,
by the same operation."""

from django.conf import settings
from django.db import migrations

from operations.migration_operations import TrimHistoryIndexes


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run inside a transaction

    dependencies = [
        ("compliance", "0002_requests_exports_consents_erasures"),
        ("shop", "0007_history_index_trim"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        TrimHistoryIndexes(
            indexes={
                "historicalconsentpurpose": "h_consentpurpose_7f6db7",
                "historicalconsentstate": "h_consentstate_ad8d9a",
                "historicalconsenttext": "h_consenttext_15b1ea",
                "historicalsubjectrequest": "h_subjectrequest_c2c56e",
            },
            unindexed={"historicalsubjectrequest": ["extended_by", "verified_by"]},
        ),
    ]
