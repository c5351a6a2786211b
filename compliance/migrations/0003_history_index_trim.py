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
        ("compliance", "0002_requests_exports_consents_erasures"),
        ("shop", "0007_history_index_trim"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="historicalconsentpurpose",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_consentpurpose_7f6db7_who",
            ),
        ),
        AddIndexConcurrently(
            model_name="historicalconsentstate",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_consentstate_ad8d9a_who",
            ),
        ),
        AddIndexConcurrently(
            model_name="historicalconsenttext",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_consenttext_15b1ea_who",
            ),
        ),
        AddIndexConcurrently(
            model_name="historicalsubjectrequest",
            index=models.Index(
                condition=models.Q(("history_user_id__isnull", False)),
                fields=["history_user_id", "-history_date"],
                name="h_subjectrequest_c2c56e_who",
            ),
        ),
        RemoveIndexConcurrently(
            model_name="historicalconsentpurpose",
            name="h_consentpurpose_7f6db7_user",
        ),
        RemoveIndexConcurrently(
            model_name="historicalconsentstate",
            name="h_consentstate_ad8d9a_user",
        ),
        RemoveIndexConcurrently(
            model_name="historicalconsenttext",
            name="h_consenttext_15b1ea_user",
        ),
        RemoveIndexConcurrently(
            model_name="historicalsubjectrequest",
            name="h_subjectrequest_c2c56e_user",
        ),
        RemoveFieldIndex(
            model_name="historicalsubjectrequest",
            name="extended_by",
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
            model_name="historicalsubjectrequest",
            name="verified_by",
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
