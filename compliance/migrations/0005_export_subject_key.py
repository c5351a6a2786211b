from django.db import migrations, models


def keys_from_subjects(apps, schema_editor):
    """Existing exports name their subject's key too: from the subject, or, once the subject
    row is gone, from the export's ledger entry (its target is "label:key"). Exports are few."""
    alias = schema_editor.connection.alias
    SubjectExport = apps.get_model("compliance", "SubjectExport")
    LedgerEntry = apps.get_model("versions", "LedgerEntry")
    for export in SubjectExport.objects.using(alias).filter(subject_key=""):
        if export.subject_id is not None:
            key = str(export.subject_id)
        else:
            entry = (
                LedgerEntry.objects.using(alias)
                .filter(action="export", details__export=export.pk)
                .first()
            )
            key = entry.target.partition(":")[2] if entry is not None else ""
        if key:
            SubjectExport.objects.using(alias).filter(pk=export.pk).update(subject_key=key)


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0004_export_erasure_request"),
        ("versions", "0006_backups"),
    ]

    operations = [
        migrations.AddField(
            model_name="subjectexport",
            name="subject_key",
            field=models.CharField(
                blank=True,
                db_default="",
                db_index=True,
                default="",
                editable=False,
                help_text="The subject's primary key, kept should the subject row go (or be "
                "gone already: a subject known from history only).",
                max_length=64,
            ),
        ),
        migrations.RunPython(keys_from_subjects, migrations.RunPython.noop, elidable=True),
    ]
