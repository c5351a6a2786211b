"""Consent events outlive their subject's row: no foreign-key constraint, nothing done on
the subject's delete. The events keep the subject's key (subject_id) and its index, and a
retention policy on consent events removes those of subjects whose row is gone."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0005_export_subject_key"),
        migrations.swappable_dependency(settings.COMPLIANCE_SUBJECT_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="consentevent",
            name="subject",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="consent_events",
                to=settings.COMPLIANCE_SUBJECT_MODEL,
            ),
        ),
    ]
