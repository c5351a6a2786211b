"""History indexes trimmed (docs/migrations.md; `versions.history.TrackedHistory`).

The user index of each history table becomes partial: rows no user made (purges, erasures,
backfills, tasks) are left out of it, since the filter by user always names one. The copies
of foreign keys to the staff's user model (who deleted a row, placed a hold, verified a
request) lose their index: history is never looked up by them. Each history row written is
then one or two index entries lighter.

The new user index is built CONCURRENTLY before the old one is dropped, so history stays
writable and the filter by user indexed throughout: the migration is not atomic, and every
operation can run again after an interrupted run.
"""

from django.conf import settings
from django.db import migrations

from operations.migration_operations import TrimHistoryIndexes


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run inside a transaction

    dependencies = [
        ("shop", "0006_customer_full_name_required"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        TrimHistoryIndexes(
            indexes={
                "historicalanalyticsevent": "h_analyticsevent_4987d2",
                "historicalcustomer": "h_customer_f11efd",
                "historicaldocument": "h_document_0e5b73",
                "historicalmessage": "h_message_9c48e7",
                "historicalnotification": "h_notification_40d142",
                "historicalnotificationpreference": "h_notificationpr_ee06cd",
                "historicalorder": "h_order_82cbd6",
                "historicalpasswordresettoken": "h_passwordresett_ad81ce",
                "historicalsession": "h_session_8aa1e4",
            },
            unindexed={"historicalcustomer": ["deleted_by"], "historicaldocument": ["deleted_by"]},
        ),
    ]
