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

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from project.migration_operations import (
    AddIndexConcurrently,
    RemoveFieldIndex,
    RemoveIndexConcurrently,
)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run inside a transaction

    dependencies = [
        ("shop", "0006_customer_full_name_required"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="historicalanalyticsevent",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_analyticsevent_4987d2_who",
            ),
        ),
        AddIndexConcurrently(
            model_name="historicalcustomer",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_customer_f11efd_who",
            ),
        ),
        AddIndexConcurrently(
            model_name="historicaldocument",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_document_0e5b73_who",
            ),
        ),
        AddIndexConcurrently(
            model_name="historicalmessage",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_message_9c48e7_who",
            ),
        ),
        AddIndexConcurrently(
            model_name="historicalnotification",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_notification_40d142_who",
            ),
        ),
        AddIndexConcurrently(
            model_name="historicalnotificationpreference",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_notificationpr_ee06cd_who",
            ),
        ),
        AddIndexConcurrently(
            model_name="historicalorder",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_order_82cbd6_who",
            ),
        ),
        AddIndexConcurrently(
            model_name="historicalpasswordresettoken",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_passwordresett_ad81ce_who",
            ),
        ),
        AddIndexConcurrently(
            model_name="historicalsession",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_session_8aa1e4_who",
            ),
        ),
        RemoveIndexConcurrently(
            model_name="historicalanalyticsevent",
            name="h_analyticsevent_4987d2_user",
        ),
        RemoveIndexConcurrently(
            model_name="historicalcustomer",
            name="h_customer_f11efd_user",
        ),
        RemoveIndexConcurrently(
            model_name="historicaldocument",
            name="h_document_0e5b73_user",
        ),
        RemoveIndexConcurrently(
            model_name="historicalmessage",
            name="h_message_9c48e7_user",
        ),
        RemoveIndexConcurrently(
            model_name="historicalnotification",
            name="h_notification_40d142_user",
        ),
        RemoveIndexConcurrently(
            model_name="historicalnotificationpreference",
            name="h_notificationpr_ee06cd_user",
        ),
        RemoveIndexConcurrently(
            model_name="historicalorder",
            name="h_order_82cbd6_user",
        ),
        RemoveIndexConcurrently(
            model_name="historicalpasswordresettoken",
            name="h_passwordresett_ad81ce_user",
        ),
        RemoveIndexConcurrently(
            model_name="historicalsession",
            name="h_session_8aa1e4_user",
        ),
        RemoveFieldIndex(
            model_name="historicalcustomer",
            name="deleted_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        RemoveFieldIndex(
            model_name="historicaldocument",
            name="deleted_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
