import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def one_waiting_per_subject(apps, schema_editor):
    """Before the constraint: of a subject's exports still queued or running, all but the
    newest are marked failed (a second click that slipped in; its task would write a copy)."""
    alias = schema_editor.connection.alias
    SubjectExport = apps.get_model("compliance", "SubjectExport")
    waiting = (
        SubjectExport.objects.using(alias)
        .filter(status__in=["pending", "running"])
        .exclude(subject_key="")
        .order_by("subject_key", "-created_at", "-id")
    )
    seen = set()
    for pk, key in waiting.values_list("pk", "subject_key"):
        if key in seen:
            SubjectExport.objects.using(alias).filter(pk=pk).update(
                status="failed", error="Another export of this subject was queued at the same time."
            )
        seen.add(key)


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0006_consent_evidence_outlives_subject"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="subjectexport",
            name="download_key",
            field=models.CharField(
                blank=True,
                editable=False,
                help_text="The unguessable key that addresses the export's download page "
                "(never its id).",
                max_length=64,
                null=True,
                unique=True,
            ),
        ),
        migrations.AddField(
            model_name="subjectexport",
            name="recipient",
            field=models.ForeignKey(
                blank=True,
                help_text="The officer, besides the one who ran it, who may download the export.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(one_waiting_per_subject, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="subjectexport",
            constraint=models.UniqueConstraint(
                condition=models.Q(status__in=["pending", "running"]) & ~models.Q(subject_key=""),
                fields=("subject_key",),
                name="subject_export_one_waiting",
            ),
        ),
    ]
