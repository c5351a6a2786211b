"""The backup catalogue, its checks and the erasure replay matches moved from `versions` to
`operations` by state only: a database migrated before the move keeps every row."""

from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from compliance.roles import AUDITOR, OFFICER
from operations.models import Backup, BackupCheck, ErasureReplayMatch
from versions.ledger import ledger_append
from versions.models import LedgerAction

# The last migrations before the move, and the operations app not yet there.
BEFORE = [("versions", "0010_replay_matches_check_details"), ("operations", None)]


def _rows_before_the_move():
    """Migrate back to before the move and write one of each row through that state's models."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE[0], at_end=True).apps
    now = timezone.now()
    backup = old.get_model("versions", "Backup").objects.create(
        file="20261201T000000Z-daily.dump",
        tier="daily",
        vendor=connection.vendor,
        created_at=now,
        size=1234,
        sha256="a" * 64,
        manifest={"tables": {"shop_customer": 2}},
        created_by="system",
    )
    old.get_model("versions", "BackupCheck").objects.create(
        backup_id=backup.pk,
        file=backup.file,
        kind="drill",
        ok=True,
        detail="restored and compared",
        checked_at=now,
        actor_label="system",
    )
    certificate = old.get_model("compliance", "ErasureCertificate").objects.create(
        created_at=now,
        subject_model="shop.Customer",
        subject_ref="ref",
        plan_hash="b" * 64,
        counts={},
        actor_label="system",
        reason="erasure before the move",
        ledger_entry_id=ledger_append(
            action=LedgerAction.ERASURE, actor=None, reason="erasure before the move"
        ).pk,
    )
    entry = old.get_model("compliance", "ErasureLogEntry").objects.create(
        certificate_id=certificate.pk, kind="email", digest="c" * 64
    )
    old.get_model("versions", "ErasureReplayMatch").objects.create(
        created_at=now, replay="replay after restore", log_entry_id=entry.pk, field="email",
        subject_key="42",
    )  # fmt: skip
    return backup.pk


def test_a_database_from_before_the_move_keeps_its_catalogue_checks_and_matches(
    transactional_db,
):
    """Rows written by the old `versions` models are read by the new `operations` ones after
    `migrate`, with their checks, and both roles keep their permissions on them."""
    backup_pk = _rows_before_the_move()

    call_command("migrate", verbosity=0)

    backup = Backup.objects.get(pk=backup_pk)
    assert backup.file == "20261201T000000Z-daily.dump" and backup.manifest["tables"]
    (check,) = backup.checks.all()
    assert check.kind == BackupCheck.Kind.DRILL and check.ok
    match = ErasureReplayMatch.objects.get()
    assert match.subject_key == "42" and match.log_entry.kind == "email"
    assert Backup._meta.db_table == "versions_backup"  # the table itself never moved
    officer = set(Group.objects.get(name=OFFICER).permissions.values_list("codename", flat=True))
    auditor = set(Group.objects.get(name=AUDITOR).permissions.values_list("codename", flat=True))
    assert {"view_backup", "run_backup_backup", "view_erasurereplaymatch"} <= officer
    assert {"view_backup", "view_erasurereplaymatch"} <= auditor
    assert (
        Group.objects.get(name=OFFICER)
        .permissions.filter(codename="run_backup_backup", content_type__app_label="operations")
        .exists()
    )
