"""The backup catalogue, its checks and the erasure replay matches now belong to the
operations app: dropped from this app's state only; their tables stay (operations 0001)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("operations", "0001_initial"),
        ("versions", "0010_replay_matches_check_details"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
        migrations.RemoveField(
            model_name='backupcheck',
            name='backup',
        ),
        migrations.RemoveField(
            model_name='erasurereplaymatch',
            name='erasure',
        ),
        migrations.RemoveField(
            model_name='erasurereplaymatch',
            name='log_entry',
        ),
        migrations.DeleteModel(
            name='Backup',
        ),
        migrations.DeleteModel(
            name='BackupCheck',
        ),
        migrations.DeleteModel(
            name='ErasureReplayMatch',
        ),
            ],
        ),
    ]
