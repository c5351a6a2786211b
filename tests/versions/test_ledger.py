"""The ledger: append-only, hash-chained, verified by `verify_ledger`."""

import logging
import math
import os
import subprocess
import sys
import threading
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.checks import Tags, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.models.signals import pre_save

from tests.conftest import LEDGER_TRUNCATE_SETTING
from versions import config
from versions.checks import ledger_anchor_check, ledger_secret_check
from versions.context import change_context
from versions.ledger import GENESIS, key_id, ledger_append
from versions.models import LedgerAction, LedgerCheckpoint, LedgerEntry

KEY_A = "ledger-key-a-0123456789abcdefghijklmnopqrstuvwxyz"
KEY_B = "ledger-key-b-0123456789abcdefghijklmnopqrstuvwxyz"


def ledger_verify(**kwargs):
    """The service as a scheduled run calls it: the system verifies."""
    from versions.ledger import ledger_verify as verify

    return verify(actor=None, reason="test", **kwargs)


@pytest.fixture
def chain(db):
    """Five entries, as privileged actions would leave them."""
    return [
        ledger_append(
            action=LedgerAction.EXPORT,
            actor=None,
            reason="",
            target="shop.Customer",
            counts={"rows": i},
        )
        for i in range(5)
    ]


def _verify():
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    return out.getvalue()


def test_entries_chain_from_genesis(chain):
    """Each entry links to its predecessor; the first to the genesis hash."""
    assert chain[0].prev_hash == GENESIS
    for before, after in zip(chain, chain[1:], strict=False):
        assert after.prev_hash == before.hash


def test_verify_passes_on_an_intact_chain(chain):
    """verify_ledger exits 0 and reports how many entries it checked."""
    assert "Ledger intact: 5 entries verified" in _verify()


def test_entry_records_the_actor_and_the_context(db, officer):
    """The actor is the user given; the request id comes from the change context."""
    with change_context(request_id="req-ledger-01"):
        entry = ledger_append(
            action=LedgerAction.RESTORE, actor=officer, reason="", target="shop.Customer:1"
        )
    assert entry.actor == officer
    assert entry.actor_label == "officer"
    assert entry.request_id == "req-ledger-01"


def test_system_actor_is_named(db):
    """Without a user the actor is "system" and the channel names the command that ran."""
    with change_context(channel="command:purge"):
        entry = ledger_append(
            action=LedgerAction.PURGE, actor=None, reason="", counts={"deleted": 3}
        )
    assert entry.actor is None and entry.actor_label == "system"
    assert entry.channel == "command:purge"


def test_entry_records_channel_and_reason(db, officer):
    """A command run on behalf of a user is told apart from the user in the admin."""
    with change_context(user=officer, channel="command:erase"):
        entry = ledger_append(action=LedgerAction.ERASURE, actor=officer, reason="ticket 7")
    assert (entry.actor_label, entry.channel, entry.reason) == (
        "officer",
        "command:erase",
        "ticket 7",
    )
    assert ledger_verify().ok


def test_reason_is_part_of_the_hash(chain):
    """Rewriting the reason of an entry breaks the chain at that entry."""
    _sql("UPDATE versions_ledgerentry SET reason = 'routine' WHERE id = %s", [chain[3].pk])
    assert ledger_verify().broken_id == chain[3].pk


def test_deleted_newest_entries_are_found_with_a_recorded_head(chain):
    """A head hash kept outside the database exposes entries deleted from the end."""
    recorded = ledger_verify().head
    assert "Ledger intact: 5 entries verified" in _verify()
    # Deleting the newest entry and every checkpoint that knew it leaves a consistent chain...
    _sql("DELETE FROM versions_ledgerentry WHERE id = %s", [chain[-1].pk])
    _sql("DELETE FROM versions_ledgercheckpoint WHERE head = %s", [chain[-1].hash])
    assert ledger_verify().ok
    with pytest.raises(CommandError, match="the expected head .* is no longer in the chain"):
        call_command("verify_ledger", expect_head=recorded, stdout=StringIO())


def test_unknown_action_is_refused(db):
    """Only the documented actions can be recorded."""
    with pytest.raises(ValueError, match="unknown ledger action"):
        ledger_append(action="coffee", actor=None, reason="")


def test_orm_cannot_change_or_delete_entries(chain):
    """Updates and deletes through the ORM are refused."""
    entry = chain[0]
    entry.target = "changed"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        LedgerEntry.objects.filter(pk=entry.pk).update(target="x")
    with pytest.raises(PermissionError):
        LedgerEntry.objects.all().delete()
    assert "5 entries verified" in _verify()


def _sql(statement, params=()):
    """Tamper as the table's owner would: past the append-only trigger on PostgreSQL."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(statement, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE versions_ledgerentry SET counts = '{}' WHERE id = %s",
        "DELETE FROM versions_ledgerentry WHERE id = %s",
    ],
    ids=["update", "delete"],
)
def test_database_refuses_sql_changes_to_entries(postgres, chain, statement):
    """On PostgreSQL a trigger refuses UPDATE and DELETE, whoever sends them (bar the owner)."""
    with (
        pytest.raises(DatabaseError, match="the ledger is append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [chain[1].pk])
    assert "5 entries verified" in _verify()


def test_altered_row_is_named(chain):
    """Changing one row's counts in SQL makes verify_ledger fail and name that entry."""
    _sql("UPDATE versions_ledgerentry SET counts = %s WHERE id = %s", ['{"rows": 99}', chain[2].pk])
    with pytest.raises(CommandError, match=rf"Ledger broken at entry #{chain[2].pk}: its content"):
        _verify()


def test_deleted_row_is_found_at_its_successor(chain):
    """Deleting a row in SQL leaves a gap in the sequence, reported at the entry after it."""
    _sql("DELETE FROM versions_ledgerentry WHERE id = %s", [chain[1].pk])
    with pytest.raises(
        CommandError, match=rf"entry #{chain[2].pk}: the entry no. 2 before it is missing"
    ):
        _verify()


def test_inserted_row_is_named(chain):
    """A row inserted in SQL cannot carry a valid keyed hash."""
    head = chain[-1]
    _sql(
        "INSERT INTO versions_ledgerentry (created_at, action, actor_label, channel, reason, "
        "target, counts, details, request_id, task_id, key_id, prev_hash, hash) "
        "VALUES (%s, 'erasure', 'mallory', '', '', '', '{}', '{}', '', '', %s, %s, %s)",
        [head.created_at, head.key_id, head.hash, "f" * 64],
    )
    forged = LedgerEntry.objects.order_by("-id").first()
    report = ledger_verify()
    assert not report.ok and report.broken_id == forged.pk
    assert report.checked == 5


def test_command_exit_code_is_non_zero_when_broken(chain):
    """The command's error carries exit status 1, which manage.py returns to cron."""
    _sql("UPDATE versions_ledgerentry SET actor_label = 'x' WHERE id = %s", [chain[0].pk])
    with pytest.raises(CommandError) as excinfo:
        _verify()
    assert excinfo.value.returncode == 1


def test_empty_ledger_verifies(db):
    """A new installation has an intact, empty chain."""
    assert ledger_verify().ok and ledger_verify().head == GENESIS


def test_concurrent_appends_keep_one_chain(postgres, transactional_db):
    """Appends from parallel connections serialise: no fork, no lost entry (PostgreSQL)."""
    errors = []

    def worker():
        try:
            for _ in range(10):
                ledger_append(
                    action=LedgerAction.BACKUP, actor=None, reason="", counts={"files": 1}
                )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    report = ledger_verify()
    assert report.ok and report.checked == 40


# --- Keys: the ledger's own, rotatable -------------------------------------------------


def test_entries_carry_the_id_of_their_key(chain, settings):
    """Every entry names the fingerprint of the LEDGER_SECRET that signed it."""
    assert {e.key_id for e in chain} == {key_id(settings.LEDGER_SECRET)}
    assert key_id(settings.LEDGER_SECRET) != key_id(settings.SECRET_KEY)


def test_rotated_key_keeps_old_entries_verifiable(db, settings):
    """With the old key moved to LEDGER_PREVIOUS_SECRETS, old and new entries verify."""
    settings.LEDGER_SECRET = KEY_A
    old = [ledger_append(action=LedgerAction.BACKUP, actor=None, reason="") for _ in range(3)]
    settings.LEDGER_SECRET, settings.LEDGER_PREVIOUS_SECRETS = KEY_B, [KEY_A]
    new = [ledger_append(action=LedgerAction.BACKUP, actor=None, reason="") for _ in range(2)]
    assert {e.key_id for e in old} == {key_id(KEY_A)} and {e.key_id for e in new} == {key_id(KEY_B)}
    assert new[0].prev_hash == old[-1].hash
    assert "Ledger intact: 5 entries verified" in _verify()


def test_entry_with_an_unknown_key_id_is_reported_clearly(db, settings):
    """A key rotated without keeping the old one: the first entry it signed is named, and why."""
    settings.LEDGER_SECRET = KEY_A
    first = ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    settings.LEDGER_SECRET = KEY_B
    ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    with pytest.raises(CommandError) as excinfo:
        _verify()
    message = str(excinfo.value)
    assert f"entry #{first.pk}: it was signed with key id {key_id(KEY_A)}" in message
    assert "add the retired key to LEDGER_PREVIOUS_SECRETS" in message


def test_missing_ledger_secret_stops_the_ledger(db, settings):
    """Outside the demo the ledger refuses to run without LEDGER_SECRET (no SECRET_KEY fallback)."""
    settings.LEDGER_SECRET, settings.DEMO = "", False
    with pytest.raises(ImproperlyConfigured, match="Set the LEDGER_SECRET"):
        ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    assert not LedgerEntry.objects.exists()


def test_demo_uses_its_own_built_in_key(db, settings):
    """DEMO=true without LEDGER_SECRET signs with the demo key, not SECRET_KEY."""
    settings.LEDGER_SECRET, settings.DEMO = "", True
    entry = ledger_append(action=LedgerAction.DEMO_SEED, actor=None, reason="")
    assert entry.key_id == key_id(config.DEMO_LEDGER_SECRET)


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("", ["versions.E001"]),
        ("same-as-secret-key", ["versions.E002"]),
        ("too-short-0123456789", ["versions.E003"]),
        (KEY_A, []),
    ],
    ids=["missing", "secret-key", "short", "good"],
)
def test_deploy_check_refuses_a_weak_ledger_secret(settings, tmp_path, secret, expected):
    """`check --deploy` refuses a missing LEDGER_SECRET, SECRET_KEY itself, or a short one."""
    if secret == "same-as-secret-key":
        secret = settings.SECRET_KEY
    settings.LEDGER_SECRET = secret
    settings.LEDGER_HEAD_FILE = str(tmp_path / "ledger.head")
    deploy = run_checks(tags=[Tags.security], include_deployment_checks=True)
    assert [m.id for m in deploy if m.id.startswith("versions.")] == expected
    assert [m.id for m in ledger_secret_check(None)] == expected
    assert not [m for m in run_checks() if m.id.startswith("versions.")]  # deploy-time only


# --- Canonical form: no false alarm after the database's JSON round trip ---------------


@pytest.mark.parametrize(
    "value",
    [1e16, -0.0, 1e300, 1.0, 0.1, 1.5e-10, 5e-324, 2**70, -1e-7, [1e16, -0.0], {"n": -0.0}],
    ids=repr,
)
def test_numbers_the_database_reshapes_still_verify(db, value):
    """A value PostgreSQL's JSON would rewrite (1e16 -> integer, -0.0 -> 0) verifies untouched."""
    entry = ledger_append(
        action=LedgerAction.EXPORT, actor=None, reason="", counts={"v": value}, details={"v": value}
    )
    stored = LedgerEntry.objects.get(pk=entry.pk)
    assert stored.counts == entry.counts and stored.details == entry.details
    assert ledger_verify().ok


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"v": math.nan}, "JSON has no NaN or infinity"),
        ({"v": math.inf}, "JSON has no NaN or infinity"),
        ({"v": [-math.inf]}, "JSON has no NaN or infinity"),
        ({"v": "a\x00b"}, "NUL character"),
        ({"a\x00": 1}, "NUL character"),
        ({"v": "\ud800"}, "lone surrogate"),
        ({1: 2}, "JSON keys are strings"),
        ({"v": Decimal("1.5")}, "is a Decimal"),
    ],
    ids=["nan", "inf", "-inf", "nul", "nul-key", "surrogate", "int-key", "decimal"],
)
def test_values_json_cannot_hold_are_refused(db, counts, message):
    """NaN, infinities, NUL characters and non-JSON types are a clear ValueError, not an entry."""
    with pytest.raises(ValueError, match=message):
        ledger_append(action=LedgerAction.EXPORT, actor=None, reason="", counts=counts)
    with pytest.raises(ValueError, match=message):
        ledger_append(action=LedgerAction.EXPORT, actor=None, reason="", details=counts)
    assert not LedgerEntry.objects.exists()


def test_nul_in_reason_is_refused(db):
    """A reason PostgreSQL could not store is refused on every database."""
    with pytest.raises(ValueError, match="reason contains a NUL"):
        ledger_append(action=LedgerAction.EXPORT, actor=None, reason="ticket\x00 7")


def test_long_reason_is_stored_whole(db):
    """A reason of 5,000 characters is kept in full and verifies."""
    reason = ("Art. 17 request, see ticket 4711. " * 150)[:5000]
    entry = ledger_append(action=LedgerAction.ERASURE, actor=None, reason=reason)
    assert LedgerEntry.objects.get(pk=entry.pk).reason == reason
    assert ledger_verify().ok


# --- Appends under contention --------------------------------------------------------


@pytest.fixture
def head_taken(db):
    """Before the next `times` inserts, another entry takes the head they read."""
    state = {"left": 0, "fired": 0}

    def take_head(sender, instance, **kwargs):
        if state["left"] and instance.pk is None:
            state["left"] -= 1
            state["fired"] += 1
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO versions_ledgerentry (created_at, action, actor_label, "
                    "channel, reason, target, counts, details, request_id, task_id, key_id, "
                    "prev_hash, hash) VALUES (%s, 'backup', 'other', '', '', '', '{}', '{}', "
                    "'', '', '', %s, %s)",
                    [instance.created_at, instance.prev_hash, f"{state['fired']:064x}"],
                )

    pre_save.connect(take_head, sender=LedgerEntry)
    yield state
    pre_save.disconnect(take_head, sender=LedgerEntry)


def test_append_retries_when_another_writer_took_the_head(chain, head_taken):
    """An insert that collides on the head (IntegrityError) is retried and joins the chain."""
    head_taken["left"] = 2
    entry = ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    assert head_taken["fired"] == 2
    assert entry.prev_hash == chain[-1].hash
    assert "Ledger intact: 6 entries verified" in _verify()


def test_append_gives_up_after_repeated_collisions(chain, head_taken):
    """When the head is taken on every attempt the IntegrityError reaches the caller."""
    head_taken["left"] = 100
    with pytest.raises(IntegrityError):
        ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    assert head_taken["fired"] == 5
    assert LedgerEntry.objects.count() == 5


# --- Truncation and rollback: recorded heads ------------------------------------------


def test_each_append_and_passing_verification_records_a_checkpoint(db, officer):
    """Appends record their head in their transaction; a verification records who ran it."""
    entry = ledger_append(action=LedgerAction.BACKUP, actor=officer, reason="")
    appended = LedgerCheckpoint.objects.get()
    assert (appended.kind, appended.entry_id, appended.head) == ("append", entry.pk, entry.hash)
    with change_context(channel="command:verify_ledger"):
        from versions.ledger import ledger_verify as verify

        verify(actor=officer, reason="quarterly audit")
    verified = LedgerCheckpoint.objects.latest("id")
    assert (verified.kind, verified.entry_id, verified.head) == (
        "verification",
        entry.pk,
        entry.hash,
    )
    assert (verified.actor_label, verified.channel, verified.reason) == (
        "officer",
        "command:verify_ledger",
        "quarterly audit",
    )


def test_failed_verification_records_no_checkpoint(chain):
    """A broken chain is not blessed with a new checkpoint."""
    _sql("UPDATE versions_ledgerentry SET target = 'x' WHERE id = %s", [chain[2].pk])
    before = LedgerCheckpoint.objects.count()
    assert not ledger_verify().ok
    assert LedgerCheckpoint.objects.count() == before


def _empty_ledger_as_owner():
    if connection.vendor == "postgresql":
        _sql("TRUNCATE versions_ledgerentry")
    else:
        _sql("DELETE FROM versions_ledgerentry")


def test_truncated_ledger_is_reported_without_being_told(chain):
    """With every entry gone, verify_ledger (no argument) names the head that was recorded."""
    _empty_ledger_as_owner()
    assert not LedgerEntry.objects.exists()
    with pytest.raises(CommandError) as excinfo:
        _verify()
    message = str(excinfo.value)
    assert f"(entry #{chain[-1].pk}, {chain[-1].hash}) is no longer in the chain" in message
    assert "entries were removed from its end" in message


def test_deleted_newest_entries_are_reported_without_being_told(chain):
    """Deleting the newest entries in SQL is caught by the checkpoints alone."""
    _sql("DELETE FROM versions_ledgerentry WHERE id >= %s", [chain[3].pk])
    report = ledger_verify()
    assert not report.ok and report.broken_id is None and report.checked == 3
    assert f"entry #{chain[-1].pk}" in report.problem


def test_forged_checkpoint_is_reported(chain):
    """A checkpoint altered in SQL does not match its MAC, and verify_ledger says so."""
    checkpoint = LedgerCheckpoint.objects.latest("id")
    _sql(
        "UPDATE versions_ledgercheckpoint SET head = %s WHERE id = %s",
        [chain[1].hash, checkpoint.pk],
    )
    with pytest.raises(
        CommandError, match=rf"checkpoint #{checkpoint.pk} .* does not match its MAC"
    ):
        _verify()


def test_checkpoint_with_an_unknown_key_is_reported(chain, settings):
    """A checkpoint signed by a key no longer configured is named, with what to do."""
    _empty_ledger_as_owner()
    settings.LEDGER_SECRET = KEY_B
    with pytest.raises(
        CommandError, match="checkpoint #.* signed with key id .* neither LEDGER_SECRET nor"
    ):
        _verify()


def test_head_is_logged_after_commit(db, caplog, django_capture_on_commit_callbacks):
    """Each append logs the new head on `versions.ledger`, but only once it has committed."""
    with caplog.at_level(logging.INFO, logger="versions.ledger"):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            entry = ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
            assert entry.hash not in caplog.text
        assert f"ledger head entry={entry.pk} head={entry.hash}" in caplog.text


def test_head_file_is_written_after_commit(
    db, settings, tmp_path, django_capture_on_commit_callbacks
):
    """LEDGER_HEAD_FILE anchors each new head after its commit, once."""
    settings.LEDGER_HEAD_FILE = str(tmp_path / "ledger.head")
    with django_capture_on_commit_callbacks(execute=True):
        entry = ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
        assert not (tmp_path / "ledger.head").exists()
    text = (tmp_path / "ledger.head").read_text()
    assert text.startswith(f"entry={entry.pk} head={entry.hash} seq=1 prev={GENESIS} key_id=")
    with django_capture_on_commit_callbacks(execute=True):
        assert ledger_verify().ok
    assert (tmp_path / "ledger.head").read_text() == text  # same head, same signed line


def test_rollback_known_to_the_head_file_is_reported(
    db, settings, tmp_path, django_capture_on_commit_callbacks
):
    """The database rolled back to an earlier state (checkpoints too): the head file knows."""
    settings.LEDGER_HEAD_FILE = str(tmp_path / "ledger.head")
    with django_capture_on_commit_callbacks(execute=True):
        entries = [
            ledger_append(action=LedgerAction.BACKUP, actor=None, reason="") for _ in range(5)
        ]
    # What a restore of yesterday's dump would leave: three entries and their checkpoints.
    _sql("DELETE FROM versions_ledgerentry WHERE id > %s", [entries[2].pk])
    _sql("DELETE FROM versions_ledgercheckpoint WHERE entry_id > %s", [entries[2].pk])
    with pytest.raises(CommandError) as excinfo:
        _verify()
    assert (
        f"line 5 of {tmp_path / 'ledger.head'} anchored entry no. 5 (entry #{entries[-1].pk}, "
        f"{entries[-1].hash}) and the chain ends at no. 3: entries no. 4 to 5 are missing"
    ) in str(excinfo.value)


def test_forged_head_file_is_reported(db, settings, tmp_path):
    """A head file that is not a signed head line is reported, not trusted (the single-line
    file of earlier versions is read as the first anchored head)."""
    entry = ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    head_file = tmp_path / "ledger.head"
    settings.LEDGER_HEAD_FILE = str(head_file)
    head_file.write_text(f"entry={entry.pk} head={entry.hash} key_id=abc mac={'0' * 64}\n")
    assert "signed with key id abc" in ledger_verify().problem
    head_file.write_text(
        f"entry={entry.pk} head={entry.hash} key_id={entry.key_id} mac={'0' * 64}\n"
    )
    assert "does not match its MAC" in ledger_verify().problem
    head_file.write_text("hello\n")
    assert "line 1 is not an anchored head" in ledger_verify().problem


@pytest.mark.parametrize("value", ["abc", "g" * 64, "0" * 63, ""])
def test_malformed_expected_head_is_a_usage_error(value, capsys):
    """`--expect-head` with something other than 64 hex digits exits 2, as argparse does."""
    utility = ManagementUtility(["manage.py", "verify_ledger", "--expect-head", value])
    with pytest.raises(SystemExit) as excinfo:
        utility.execute()
    assert excinfo.value.code == 2
    assert "argument --expect-head" in capsys.readouterr().err


def test_expected_head_is_accepted_in_capitals(chain):
    """A head copied in upper case is the same hash."""
    out = StringIO()
    call_command("verify_ledger", expect_head=chain[-1].hash.upper(), stdout=out)
    assert "Ledger intact: 5 entries verified" in out.getvalue()


def _alter_database(action):
    name = connection.ops.quote_name(connection.settings_dict["NAME"])
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER DATABASE {name} {action}")


@pytest.mark.parametrize("table", ["versions_ledgerentry", "versions_ledgercheckpoint"])
def test_database_refuses_truncate(postgres, chain, table):
    """Without the test database's setting, TRUNCATE is refused, even if a session sets it."""
    _alter_database(f"RESET {LEDGER_TRUNCATE_SETTING}")  # undone with the test's transaction
    for session in ("", f"SET LOCAL {LEDGER_TRUNCATE_SETTING} = 'allow'"):
        with (
            pytest.raises(DatabaseError, match=f"TRUNCATE of {table} refused"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            if session:
                cursor.execute(session)
            cursor.execute(f"TRUNCATE {table}")
    assert "5 entries verified" in _verify()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE versions_ledgercheckpoint SET head = %s",
        "DELETE FROM versions_ledgercheckpoint WHERE head = %s",
    ],
    ids=["update", "delete"],
)
def test_database_refuses_sql_changes_to_checkpoints(postgres, chain, statement):
    """Checkpoints are append-only in the database too (PostgreSQL)."""
    with (
        pytest.raises(
            DatabaseError, match="append-only: (UPDATE|DELETE) of versions_ledgercheckpoint"
        ),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [chain[0].hash])


def test_checkpoints_cannot_be_changed_through_the_orm(chain):
    """The ORM refuses to update or delete checkpoints."""
    checkpoint = LedgerCheckpoint.objects.first()
    with pytest.raises(PermissionError):
        checkpoint.save()
    with pytest.raises(PermissionError):
        checkpoint.delete()
    with pytest.raises(PermissionError):
        LedgerCheckpoint.objects.all().delete()


# --- Cut from the end: sequence numbers and the chained anchor --------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_sequence_numbers_have_no_gap_after_a_rolled_back_append(db):
    """An append rolled back with its caller's transaction leaves no gap in the sequence
    numbers (ids from a database sequence would have one on PostgreSQL)."""
    first = ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    with pytest.raises(RuntimeError), transaction.atomic():
        ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
        raise RuntimeError("the caller's work failed")
    second = ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    assert (first.seq, second.seq) == (1, 2)
    assert ledger_verify().ok


def test_renumbered_entry_does_not_match_its_hash(chain):
    """The sequence number is hashed: closing a gap by renumbering is caught."""
    _sql("DELETE FROM versions_ledgerentry WHERE id = %s", [chain[1].pk])
    _sql("UPDATE versions_ledgerentry SET seq = seq - 1 WHERE id > %s", [chain[1].pk])
    report = ledger_verify()
    assert report.broken_id == chain[2].pk
    assert "its link to the previous entry is broken" in report.problem


def test_legacy_entries_without_a_sequence_number_still_verify(chain):
    """Entries written before sequence numbers were kept verify by position, and the next
    append continues the count."""
    legacy_chain = []
    prev = GENESIS
    _sql("DELETE FROM versions_ledgercheckpoint")
    _sql("DELETE FROM versions_ledgerentry")
    from versions.ledger import _entry_hash

    for entry in chain[:3]:  # rewritten as the old code signed them: no sequence number
        entry.seq, entry.prev_hash = None, prev
        entry.hash = _entry_hash(entry, prev, config.ledger_secret())
        prev = entry.hash
        legacy_chain.append(entry)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        LedgerEntry.objects.bulk_create(legacy_chain)
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")
    new = ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    assert new.seq == 4
    report = ledger_verify()
    assert report.ok and report.checked == 4


def _owner_sql(*statements):
    """As the tables' owner: the append-only triggers disabled, then enabled again."""
    with transaction.atomic(), connection.cursor() as cursor:
        for table in ("versions_ledgerentry", "versions_ledgercheckpoint"):
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for statement, params in statements:
            cursor.execute(statement, params)
        for table in ("versions_ledgerentry", "versions_ledgercheckpoint"):
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _manage(data_dir, *args):
    """`manage.py` in a process of its own, configured as the demo is by default, on the
    test database: only DEMO=true and the data directory."""
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k not in ("LEDGER_HEAD_FILE", "DEBUG")}
    env.update(
        DEMO="true",
        COMPLIANCE_DATA_DIR=str(data_dir),
        COMPLIANCE_READ_DOTENV="false",
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def committed_chain(postgres, transactional_db):
    """Five committed entries, visible to other processes (PostgreSQL)."""
    return [
        ledger_append(action=LedgerAction.EXPORT, actor=None, reason="", counts={"rows": i})
        for i in range(5)
    ]


def test_newest_entries_deleted_as_owner_are_caught_by_default(committed_chain, tmp_path):
    """As owner with the triggers disabled, deleting entries from no. 3 on and the
    checkpoints after them no longer passes verification: the demo anchors its heads in
    its data directory by default."""
    verified = _manage(tmp_path, "verify_ledger")
    assert verified.returncode == 0, verified.stderr
    assert (tmp_path / "ledger.head").exists()
    cut = committed_chain[2].pk
    _owner_sql(
        ("DELETE FROM versions_ledgerentry WHERE id >= %s", [cut]),
        ("DELETE FROM versions_ledgercheckpoint WHERE entry_id >= %s", [cut]),
    )
    result = _manage(tmp_path, "verify_ledger")
    assert result.returncode == 1
    assert "Ledger intact" not in result.stdout
    assert "the chain ends at no. 2: entries no. 3 to 5 are missing" in result.stderr


def test_both_tables_truncated_by_a_superuser_are_caught_by_default(committed_chain, tmp_path):
    """A superuser in replica mode (no trigger fires) truncating entries and checkpoints
    leaves an empty ledger that no longer verifies as "intact: 0 entries"."""
    assert _manage(tmp_path, "verify_ledger").returncode == 0
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("TRUNCATE versions_ledgerentry, versions_ledgercheckpoint")
        cursor.execute("SET session_replication_role = origin")
    result = _manage(tmp_path, "verify_ledger")
    assert result.returncode == 1
    assert "the chain ends at no. 0: entries no. 1 to 5 are missing" in result.stderr


def test_deletion_followed_by_an_append_is_caught(
    postgres, settings, tmp_path, django_capture_on_commit_callbacks
):
    """Entries deleted from the end, then one ordinary append: the new head does not hide
    the gap, since the head anchored before it is gone from the chain."""
    settings.LEDGER_HEAD_FILE = str(tmp_path / "ledger.head")
    with django_capture_on_commit_callbacks(execute=True):
        entries = [
            ledger_append(action=LedgerAction.BACKUP, actor=None, reason="") for _ in range(5)
        ]
    _owner_sql(
        ("DELETE FROM versions_ledgerentry WHERE id >= %s", [entries[2].pk]),
        ("DELETE FROM versions_ledgercheckpoint WHERE entry_id >= %s", [entries[2].pk]),
    )
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(4):  # the appends take the deleted numbers, then go past them
            ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    report = ledger_verify()
    assert not report.ok
    assert "the chain was cut at or before it" in report.problem
    assert f"(entry #{entries[2].pk}, {entries[2].hash})" in report.problem  # the removed one
    assert report.problem.startswith("it is not the entry no. 3 that line 3")


def test_deletion_followed_by_one_append_is_caught(
    db, settings, tmp_path, django_capture_on_commit_callbacks
):
    """One append after the deletion: the anchor still names a further head."""
    _anchored(settings, tmp_path, django_capture_on_commit_callbacks, count=5)
    entries = list(LedgerEntry.objects.order_by("id"))
    _sql("DELETE FROM versions_ledgerentry WHERE id >= %s", [entries[2].pk])
    _sql("DELETE FROM versions_ledgercheckpoint WHERE entry_id >= %s", [entries[2].pk])
    with django_capture_on_commit_callbacks(execute=True):
        ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    report = ledger_verify()
    assert not report.ok and report.broken_id == LedgerEntry.objects.latest("id").pk
    assert report.problem.startswith("it is not the entry no. 3 that line 3")


def _anchored(settings, tmp_path, django_capture_on_commit_callbacks, count=4):
    settings.LEDGER_HEAD_FILE = str(tmp_path / "ledger.head")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(count):
            ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    return tmp_path / "ledger.head"


def test_each_anchor_line_is_chained_to_the_one_before(
    db, settings, tmp_path, django_capture_on_commit_callbacks
):
    """Each anchored head names the sha256 of the line before it; the first, the genesis."""
    import hashlib

    lines = _anchored(settings, tmp_path, django_capture_on_commit_callbacks).read_text()
    lines = lines.splitlines()
    assert len(lines) == 4
    assert f" prev={GENESIS} " in lines[0]
    for before, after in zip(lines, lines[1:], strict=False):
        assert f" prev={hashlib.sha256(before.encode()).hexdigest()} " in after
    assert ledger_verify().ok


def test_anchor_line_cut_from_the_middle_is_reported(
    db, settings, tmp_path, django_capture_on_commit_callbacks
):
    """A line removed from the anchor file breaks the next line's link."""
    path = _anchored(settings, tmp_path, django_capture_on_commit_callbacks)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:1] + lines[2:]))
    assert "line 2 does not follow the line before it" in ledger_verify().problem


def test_rewritten_anchor_line_is_reported(
    db, settings, tmp_path, django_capture_on_commit_callbacks
):
    """A line whose head or number was rewritten does not match its MAC."""
    path = _anchored(settings, tmp_path, django_capture_on_commit_callbacks)
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace(" seq=4 ", " seq=3 ")
    path.write_text("".join(lines))
    assert "line 4 does not match its MAC" in ledger_verify().problem


def test_anchor_cut_at_its_end_with_the_entries_is_still_caught_by_checkpoints(
    db, settings, tmp_path, django_capture_on_commit_callbacks
):
    """Cutting the anchor's last lines along with the entries they named is what the
    anchor cannot see alone: the checkpoints in the database still do, unless they are cut
    too (keep the file where the database's users cannot write)."""
    path = _anchored(settings, tmp_path, django_capture_on_commit_callbacks)
    newest = LedgerEntry.objects.order_by("-id").first()
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    _sql("DELETE FROM versions_ledgerentry WHERE id = %s", [newest.pk])
    assert f"(entry #{newest.pk}, {newest.hash}) is no longer in the chain" in (
        ledger_verify().problem
    )


def test_anchor_is_not_moved_back_by_an_older_head(db, settings, tmp_path):
    """A head published after a further one (commits finishing out of order) adds no line."""
    from versions.anchor import anchor_append

    path = tmp_path / "ledger.head"
    written = anchor_append(path, entry=9, head="a" * 64, seq=9, key_id="k", secret=KEY_A)
    assert (
        written
        and anchor_append(path, entry=8, head="b" * 64, seq=8, key_id="k", secret=KEY_A) is None
    )
    assert path.read_text().splitlines() == [written]


def test_demo_anchors_the_head_in_the_data_directory():
    """DEMO=true without LEDGER_HEAD_FILE anchors in COMPLIANCE_DATA_DIR; outside the demo
    nothing is chosen for the operator (the deploy check asks for it)."""
    probe = "from django.conf import settings; print('anchor=' + settings.LEDGER_HEAD_FILE)"

    def head_file(**env):
        base = {k: v for k, v in os.environ.items() if k not in ("LEDGER_HEAD_FILE", "DEMO")}
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", probe],
            cwd=ROOT,
            env={**base, "COMPLIANCE_READ_DOTENV": "false", **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return next(line for line in result.stdout.splitlines() if line.startswith("anchor="))

    assert head_file(DEMO="true", COMPLIANCE_DATA_DIR="/srv/data") == "anchor=/srv/data/ledger.head"
    assert head_file(DEMO="false") == "anchor="


def test_deploy_check_refuses_a_ledger_without_an_anchor(settings, tmp_path):
    """`check --deploy` fails (versions.E004) while LEDGER_HEAD_FILE is unset."""
    settings.LEDGER_HEAD_FILE = ""
    deploy = run_checks(tags=[Tags.security], include_deployment_checks=True)
    assert "versions.E004" in [m.id for m in deploy]
    assert not [m for m in run_checks() if m.id == "versions.E004"]  # deploy-time only
    settings.LEDGER_HEAD_FILE = str(tmp_path / "ledger.head")
    assert ledger_anchor_check(None) == []


# --- The admin ------------------------------------------------------------------------


def test_ledger_list_shows_counts_readably(auditor_client):
    """The list shows "rows: 3, files: 1", not raw JSON."""
    ledger_append(action=LedgerAction.EXPORT, actor=None, reason="", counts={"rows": 3, "files": 1})
    page = auditor_client.get("/admin/versions/ledgerentry/").content.decode()
    page = page.replace("<wbr>", "")  # break opportunities after "." and ":"
    assert "rows: 3, files: 1" in page
    assert "{&quot;rows&quot;" not in page and '{"rows"' not in page


def test_ledger_entry_page_is_readable_and_has_no_history(auditor_client):
    """An entry's page shows counts and details as text and offers no empty History page."""
    entry = ledger_append(
        action=LedgerAction.EXPORT,
        actor=None,
        reason="subject request",
        counts={"rows": 3},
        details={"format": "json", "models": ["shop.Order", "shop.Customer"]},
    )
    url = f"/admin/versions/ledgerentry/{entry.pk}/change/"
    page = auditor_client.get(url).content.decode().replace("<wbr>", "")
    assert "rows: 3" in page and "format: json, models: [shop.Order, shop.Customer]" in page
    assert "historylink" not in page and "/history/" not in page
    response = auditor_client.get(f"/admin/versions/ledgerentry/{entry.pk}/history/")
    assert response.status_code == 302 and response.url == url


def test_only_a_superuser_can_disable_the_verification_schedule(officer, auditor):
    """Beat's schedule of ledger-verify-daily is edited in the admin by superusers only: no
    role has a permission on periodic tasks, so an officer's POST disabling it is refused
    (and `doctor` reports a schedule disabled by anyone)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.DAYS)
    task = PeriodicTask.objects.create(
        name="ledger-verify-daily",
        task="versions.tasks.ledger_verify_scheduled",
        interval=every,
    )
    url = f"/admin/django_celery_beat/periodictask/{task.pk}/change/"
    from django.test import Client

    for user in (officer, auditor):
        client = Client()
        client.force_login(user)
        assert client.get(url).status_code == 403
        response = client.post(url, {"name": task.name, "task": task.task, "enabled": ""})
        assert response.status_code == 403
    task.refresh_from_db()
    assert task.enabled
