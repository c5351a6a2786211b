"""The ledger: append-only, hash-chained, verified by `verify_ledger`."""

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from versions.context import change_context
from versions.models import LedgerAction, LedgerEntry
from versions.services import GENESIS, ledger_append, ledger_verify


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
    _sql("DELETE FROM versions_ledgerentry WHERE id = %s", [chain[-1].pk])
    assert ledger_verify().ok  # the shorter chain is still consistent on its own...
    with pytest.raises(CommandError, match="the recorded head .* is no longer in the chain"):
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
    from django.db import DatabaseError, transaction

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
    """Deleting a row in SQL breaks the link of the entry after it."""
    _sql("DELETE FROM versions_ledgerentry WHERE id = %s", [chain[1].pk])
    with pytest.raises(CommandError, match=rf"entry #{chain[2].pk}: its link"):
        _verify()


def test_inserted_row_is_named(chain):
    """A row inserted in SQL cannot carry a valid keyed hash."""
    head = chain[-1]
    _sql(
        "INSERT INTO versions_ledgerentry (created_at, action, actor_label, channel, reason, "
        "target, counts, details, request_id, task_id, prev_hash, hash) "
        "VALUES (%s, 'erasure', 'mallory', '', '', '', '{}', '{}', '', '', %s, %s)",
        [head.created_at, head.hash, "f" * 64],
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
