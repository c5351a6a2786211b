"""History indexes trimmed, as `shop/0007_history_index_trim` explains: the user index of
each history table leaves out rows no user made, and the copies of foreign keys recording
which staff member acted lose their index. Not atomic; every operation can run again."""

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
        ("contenttypes", "0002_remove_content_type_name"),
        ("retention", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="historicallegalhold",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_legalhold_870751_who",
            ),
        ),
        AddIndexConcurrently(
            model_name="historicalretentionpolicy",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_retentionpolic_cb70e7_who",
            ),
        ),
        RemoveIndexConcurrently(
            model_name="historicallegalhold",
            name="h_legalhold_870751_user",
        ),
        RemoveIndexConcurrently(
            model_name="historicalretentionpolicy",
            name="h_retentionpolic_cb70e7_user",
        ),
        RemoveFieldIndex(
            model_name="historicallegalhold",
            name="placed_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        RemoveFieldIndex(
            model_name="historicallegalhold",
            name="released_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
