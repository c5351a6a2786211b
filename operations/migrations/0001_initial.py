"""The backup catalogue, its checks and the erasure replay matches, moved here from `versions`
with their tables: the state moves, the tables keep their names and rows (versions 0011
drops the same models from its own state). Their content types move too, so the permissions
groups hold on them stay where they were."""

import django.db.models.deletion
from django.db import migrations, models

MOVED = ("backup", "backupcheck", "erasurereplaymatch")


def _content_types_move(apps, schema_editor, source, target):
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MOVED:
        if not types.filter(app_label=target, model=model).exists():
            types.filter(app_label=source, model=model).update(app_label=target)


def content_types_forward(apps, schema_editor):
    _content_types_move(apps, schema_editor, "versions", "operations")


def content_types_backward(apps, schema_editor):
    _content_types_move(apps, schema_editor, "operations", "versions")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("compliance", "0007_export_download_key_one_waiting"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("versions", "0010_replay_matches_check_details"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
        migrations.CreateModel(
            name='Backup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('file', models.CharField(help_text='Name in BACKUP_DIR.', max_length=200, unique=True)),
                ('tier', models.CharField(choices=[('daily', 'Daily'), ('weekly', 'Weekly'), ('monthly', 'Monthly')], db_index=True, max_length=10)),
                ('vendor', models.CharField(help_text='postgresql or sqlite.', max_length=20)),
                ('created_at', models.DateTimeField(db_index=True)),
                ('size', models.BigIntegerField(help_text='Bytes.')),
                ('sha256', models.CharField(max_length=64)),
                ('manifest', models.JSONField(default=dict)),
                ('created_by', models.CharField(help_text='Who made it; system for beat.', max_length=150)),
                ('deleted_at', models.DateTimeField(blank=True, help_text='When cleanup deleted the file; the row stays.', null=True, verbose_name='file deleted at')),
                ('deleted_by', models.CharField(blank=True, max_length=150)),
            ],
            options={
                'db_table': 'versions_backup',
                'ordering': ['-created_at', '-id'],
                'default_permissions': ('view', 'run_backup'),
            },
        ),
        migrations.CreateModel(
            name='BackupCheck',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('file', models.CharField(help_text='The file that was checked.', max_length=500)),
                ('kind', models.CharField(choices=[('verify', 'Verify'), ('drill', 'Drill')], max_length=10)),
                ('ok', models.BooleanField()),
                ('detail', models.TextField(blank=True)),
                ('facts', models.JSONField(blank=True, default=dict, help_text='Entries, tables, differences.')),
                ('checked_at', models.DateTimeField()),
                ('actor_label', models.CharField(max_length=150)),
                ('channel', models.CharField(blank=True, max_length=150)),
                ('reason', models.TextField(blank=True)),
                ('backup', models.ForeignKey(blank=True, help_text='Empty for a file that is not in the catalogue (copied from elsewhere).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='checks', to='operations.backup')),
            ],
            options={
                'db_table': 'versions_backupcheck',
                'ordering': ['-checked_at', '-id'],
                'default_permissions': (),
                'indexes': [models.Index(fields=['backup', 'kind', '-checked_at'], name='backup_check_idx')],
            },
        ),
        migrations.CreateModel(
            name='ErasureReplayMatch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(db_index=True)),
                ('replay', models.CharField(help_text='The replay that listed it (its reason).', max_length=300)),
                ('field', models.CharField(help_text="The subject's field whose value matched.", max_length=100)),
                ('subject_key', models.CharField(db_index=True, max_length=64)),
                ('status', models.CharField(choices=[('pending', 'To confirm'), ('confirmed', 'Confirmed: erased'), ('dismissed', 'Dismissed: someone else')], db_index=True, default='pending', max_length=10)),
                ('decided_at', models.DateTimeField(blank=True, null=True)),
                ('decided_by', models.CharField(blank=True, max_length=150)),
                ('decision_reason', models.TextField(blank=True)),
                ('erasure', models.ForeignKey(blank=True, help_text='The certificate of the erasure a confirmation ran.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='compliance.erasurecertificate')),
                ('log_entry', models.ForeignKey(help_text="The erasure log entry whose keyed hash the subject's email matched.", on_delete=django.db.models.deletion.PROTECT, related_name='+', to='compliance.erasurelogentry')),
            ],
            options={
                'verbose_name': 'erasure replay match',
                'verbose_name_plural': 'erasure replay matches',
                'db_table': 'versions_erasurereplaymatch',
                'ordering': ['-created_at', '-id'],
                'default_permissions': ('view',),
                'constraints': [models.UniqueConstraint(fields=('log_entry', 'field', 'subject_key'), name='erasure_replay_match_unique')],
            },
        ),
            ],
        ),
        migrations.RunPython(content_types_forward, content_types_backward, elidable=False),
    ]
