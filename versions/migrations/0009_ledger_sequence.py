"""Ledger entries get a sequence number; a new action, a policy change approved.

Entries get a sequence number: 1 for the first, the previous entry's plus one after.

Ids come from a database sequence, which skips a value whenever an append rolls back, so a
gap in ids proves nothing; the sequence number is assigned under the append lock and
covered by the entry's hash, so a gap in it is a missing entry. Entries written before
this migration keep an empty one (their hashes were made without it): verification counts
them by position. Nullable, so adding it rewrites nothing; the unique index is built on a
table of a few thousand rows at most.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('versions', '0008_ledger_purge_batch'),
    ]

    operations = [
        migrations.AddField(
            model_name='ledgerentry',
            name='seq',
            field=models.BigIntegerField(blank=True, help_text="Place in the chain from 1, the previous entry's plus one, covered by the hash; empty only on entries written before sequence numbers were kept.", null=True, unique=True, verbose_name='sequence number'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='action',
            field=models.CharField(choices=[('export', 'Export'), ('export_download', 'Export downloaded'), ('erasure', 'Erasure'), ('restore', 'Restore'), ('recover', 'Recover'), ('purge', 'Purge'), ('purge_batch', 'Purge batch committed'), ('hard_delete', 'Hard delete'), ('backup', 'Backup'), ('backup_restore', 'Restore of a backup'), ('table_recover', 'Table recovered from a backup'), ('backup_cleanup', 'Backup deleted by cleanup'), ('backup_check', 'Backup verified or drilled'), ('policy_change', 'Policy change'), ('policy_approve', 'Policy change approved'), ('hold_place', 'Legal hold placed'), ('hold_release', 'Legal hold released'), ('role_change', 'Role change'), ('demo_seed', 'Demo data seeded'), ('request', 'Data-subject request')], db_index=True, max_length=32),
        ),
    ]
