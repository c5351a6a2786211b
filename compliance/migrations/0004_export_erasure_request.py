"""Exports and erasure certificates name the data-subject request they answer.

Two nullable columns: adding them rewrites nothing. A certificate's has no foreign-key
constraint, since certificates outlive a restore of a backup that may lack the request.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0003_history_index_trim"),
    ]

    operations = [
        migrations.AddField(
            model_name="erasurecertificate",
            name="request",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                help_text="The data-subject request this erasure answers.",
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="erasure_certificates",
                to="compliance.subjectrequest",
            ),
        ),
        migrations.AddField(
            model_name="subjectexport",
            name="request",
            field=models.ForeignKey(
                blank=True,
                help_text="The data-subject request this export answers.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="exports",
                to="compliance.subjectrequest",
            ),
        ),
    ]
