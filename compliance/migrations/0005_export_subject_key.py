from django.db import migrations, models
from django.db.models.functions import Cast


def keys_from_subjects(apps, schema_editor):
    """Existing exports name their subject's key too (exports are few: one UPDATE)."""
    SubjectExport = apps.get_model("compliance", "SubjectExport")
    SubjectExport.objects.using(schema_editor.connection.alias).filter(
        subject__isnull=False
    ).update(subject_key=Cast("subject_id", models.CharField()))


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0004_export_erasure_request"),
    ]

    operations = [
        migrations.AddField(
            model_name="subjectexport",
            name="subject_key",
            field=models.CharField(
                blank=True,
                default="",
                db_default="",
                editable=False,
                help_text="The subject's primary key, kept should the subject row go (or be "
                "gone already: a subject known from history only).",
                max_length=64,
            ),
        ),
        migrations.RunPython(keys_from_subjects, migrations.RunPython.noop, elidable=True),
    ]
