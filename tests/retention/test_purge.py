"""Purge: policies, exclusions, holds, archives, the run log, the ledger and failures."""

import gzip
import json
import os
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from retention import services
from retention.archive import archive_verify
from retention.models import BatchRange, LegalHold, PolicyAction, PurgeRun, RetentionPolicy
from retention.selectors import policy_validate
from retention.services import hold_place, hold_release, policy_purge
from shop.models import AnalyticsEvent, Customer, Document, Session
from versions.context import change_context
from versions.models import LedgerEntry

OLD = timezone.now() - timedelta(days=200)
NEW = timezone.now() - timedelta(days=5)


def _policy(model, name="sessions", **fields):
    values = {"period_days": 90, "action": PolicyAction.HARD_DELETE, **fields}
    return RetentionPolicy.objects.create(
        name=name, target=ContentType.objects.get_for_model(model), **values
    )


def _sessions(customer, when, n):
    return [
        Session.objects.create(
            customer=customer,
            ip_address="192.0.2.1",
            user_agent="UA",
            created_at=when,
            expires_at=when + timedelta(days=1),
        )
        for _ in range(n)
    ]


def _archived(directory):
    """Every row in the archives under `directory`."""
    rows = []
    for path in sorted(directory.rglob("*.jsonl.gz")):
        with gzip.open(path) as stream:
            rows.extend(json.loads(line) for line in stream)
    return rows


@pytest.fixture
def archive_dir(settings, tmp_path):
    settings.RETENTION_ARCHIVE_DIR = tmp_path / "archives"
    return settings.RETENTION_ARCHIVE_DIR


def test_dry_run_counts_and_changes_nothing(customer):
    """Eligible, held, excluded and batches are counted; no row goes, no ledger entry."""
    _sessions(customer, OLD, 5)
    _sessions(customer, NEW, 2)
    run = policy_purge(policy=_policy(Session), actor=None, dry_run=True, batch_size=2)
    assert (run.status, run.eligible, run.held, run.excluded, run.batches) == (
        "dry_run",
        5,
        0,
        0,
        4,  # key ranges of 2 over the table's 7 sessions
    )
    assert Session.objects.count() == 7 and not LedgerEntry.objects.exists()


def test_purge_deletes_expired_rows_in_batches_with_history_and_a_run_log(customer):
    """Expired sessions go, new ones stay; deletion history is set-based with the context."""
    old = _sessions(customer, OLD, 5)
    _sessions(customer, NEW, 2)
    with change_context(channel="command:purge_expired"):
        run = policy_purge(policy=_policy(Session), actor=None, batch_size=2)
    # Batches are key ranges of the table: 7 sessions, 2 keys a batch.
    assert (run.status, run.purged, run.batches, run.backlog) == ("succeeded", 5, 4, 0)
    assert Session.objects.count() == 2
    deletions = Session.history.filter(history_type="-")
    assert sorted(deletions.values_list("id", flat=True)) == sorted(s.pk for s in old)
    assert set(deletions.values_list("history_channel", flat=True)) == {"command:purge_expired"}
    entry = LedgerEntry.objects.get(action="purge")
    assert entry.counts["purged"] == 5 and entry.target == "policy:sessions"


def test_purge_is_bounded_batches_of_one_statement_each(customer):
    """A batch of a leaf model deletes its range and records it set-based: one DELETE and one
    history INSERT (a single statement on PostgreSQL)."""
    _sessions(customer, OLD, 6)
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        policy_purge(policy=_policy(Session), actor=None, batch_size=3)
    deletes = [q for q in queries if 'DELETE FROM "shop_session"' in q["sql"]]
    inserts = [q for q in queries if 'INSERT INTO "shop_historicalsession"' in q["sql"]]
    assert len(deletes) == 2 and len(inserts) == 2


def test_subject_and_record_holds_keep_rows_and_are_counted(officer, customer):
    """A hold on the customer keeps all their sessions; a hold on one session keeps it."""
    other = Customer.objects.create(email="bo@example.org", full_name="Bo")
    _sessions(customer, OLD, 3)
    kept = _sessions(other, OLD, 2)
    hold_place(record=customer, reason="litigation 7", ground="art17_3_e", actor=None)
    hold_place(record=kept[0], reason="fraud case", ground="art17_3_e", actor=None)
    run = policy_purge(policy=_policy(Session), actor=None)
    assert (run.purged, run.held) == (1, 4)
    assert set(Session.objects.values_list("pk", flat=True)) >= {kept[0].pk}
    assert Session.objects.filter(customer=customer).count() == 3


def test_placing_and_releasing_a_hold_are_ledger_entries(customer):
    """Both are recorded; a released hold no longer keeps rows."""
    _sessions(customer, OLD, 2)
    hold = hold_place(record=customer, reason="audit", ground="art17_3_b", actor=None)
    hold_release(hold=hold, reason="audit closed", actor=None)
    assert list(LedgerEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "hold_place",
        "hold_release",
    ]
    assert policy_purge(policy=_policy(Session), actor=None).purged == 2
    with pytest.raises(services.RetentionRefused, match="already released"):
        hold_release(hold=LegalHold.objects.get(), reason="again", actor=None)


def test_exclusions_keep_matching_rows(customer):
    """Structured exclusions keep rows whatever their age, and are counted."""
    for name in ("page_view", "purchase", "page_view"):
        AnalyticsEvent.objects.create(customer=customer, name=name, occurred_at=OLD)
    policy = _policy(
        AnalyticsEvent,
        name="events",
        exclusions=[{"field": "name", "lookup": "exact", "value": "purchase"}],
    )
    run = policy_purge(policy=policy, actor=None)
    assert (run.purged, run.excluded) == (2, 1)
    assert list(AnalyticsEvent.objects.values_list("name", flat=True)) == ["purchase"]


def test_archive_is_written_with_its_checksum_before_rows_go(
    postgres, transactional_db, archive_dir, tmp_path, monkeypatch
):
    """Stopped after a batch's delete ran, before it commits: its archive is on disk with a
    matching sha256 while its rows are still there for everyone else. Ranges with no expired
    row get no archive; each file's sha256 is beside it and in the run log."""
    owner = Customer.objects.create(email="order@example.org", full_name="Order")
    old = _sessions(owner, OLD, 2)
    _sessions(owner, NEW, 2)  # a range with no expired row
    old += _sessions(owner, OLD, 1)
    policy = _policy(Session, archive=True)
    paused = tmp_path / "paused"
    monkeypatch.setenv("RETENTION_PAUSE_AT", "deleted:1")
    monkeypatch.setenv("RETENTION_PAUSE_FILE", str(paused))
    runs, errors = [], []

    def purger():
        try:
            runs.append(policy_purge(policy=policy, actor=None, batch_size=2))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=purger)
    thread.start()
    deadline = time.monotonic() + 30
    while not paused.exists() and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert paused.exists(), errors
        [first] = archive_dir.rglob("*.jsonl.gz")
        assert archive_verify(first)
        assert sorted(r["fields"]["id"] for r in _archived(archive_dir)) == [s.pk for s in old[:2]]
        assert Session.objects.filter(pk__in=[s.pk for s in old[:2]]).count() == 2  # not yet
    finally:
        paused.unlink(missing_ok=True)
        thread.join(timeout=30)
    assert errors == []
    [run] = runs
    assert (run.status, run.archived, len(run.archives)) == ("succeeded", 3, 2)
    files = sorted(archive_dir.rglob("*.jsonl.gz"))
    assert len(files) == 2 and all(archive_verify(path) for path in files)
    assert sorted(r["fields"]["id"] for r in _archived(archive_dir)) == sorted(s.pk for s in old)
    assert {a["sha256"] for a in run.archives} == {
        (path.parent / (path.name + ".sha256")).read_text().split()[0] for path in files
    }
    assert not Session.objects.filter(pk__in=[s.pk for s in old]).exists()


def test_a_failed_run_keeps_archives_of_what_it_deleted_and_the_retry_rewrites_its_range(
    customer, archive_dir, monkeypatch
):
    """An injected failure in the third batch, after its archive was written: two batches
    done and archived, run FAILED; the next run purges the rest, rewriting the failed
    range's archive, so every deleted row is archived exactly once."""
    _sessions(customer, OLD, 6)
    real_delete = services.rows_delete
    calls = []

    def failing(model, batch):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk gone")
        return real_delete(model, batch)

    monkeypatch.setattr(services, "rows_delete", failing)
    policy = _policy(Session, archive=True)
    failed = policy_purge(policy=policy, actor=None, batch_size=2)
    assert (failed.status, failed.purged, failed.backlog) == ("failed", 4, 2)
    # The failed batch's archive was written, but its delete rolled back: not counted.
    assert failed.archived == 4 and len(failed.archives) == 2
    assert "disk gone" in failed.error
    archived = {row["fields"]["id"] for row in _archived(archive_dir)}
    deleted = set(Session.history.filter(history_type="-").values_list("id", flat=True))
    assert deleted == archived and len(deleted) == 4  # the failed range's archive is gone
    monkeypatch.setattr(services, "rows_delete", real_delete)
    again = policy_purge(policy=policy, actor=None, batch_size=2)
    assert (again.status, again.purged) == ("succeeded", 2)
    assert not Session.objects.exists()
    ids = [row["fields"]["id"] for row in _archived(archive_dir)]
    deleted = Session.history.filter(history_type="-").values_list("id", flat=True)
    assert len(ids) == len(set(ids)) == 6 and set(ids) == set(deleted)
    logged = [a["file"] for r in PurgeRun.objects.all() for a in r.archives]
    assert sorted(logged) == sorted(
        str(p.relative_to(archive_dir)) for p in archive_dir.rglob("*.jsonl.gz")
    )


def _refuse_delete_sql(key):
    """A trigger refusing the deletion of session `key` (and the SQL dropping it)."""
    if connection.vendor == "postgresql":
        return [
            "CREATE FUNCTION test_refuse() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'deletion refused'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER test_refuse BEFORE DELETE ON shop_session FOR EACH ROW "
            f"WHEN (OLD.id = {int(key)}) EXECUTE FUNCTION test_refuse()",
        ], ["DROP TRIGGER test_refuse ON shop_session", "DROP FUNCTION test_refuse()"]
    return [
        "CREATE TRIGGER test_refuse BEFORE DELETE ON shop_session "
        f"WHEN OLD.id = {int(key)} BEGIN SELECT RAISE(ABORT, 'deletion refused'); END"
    ], ["DROP TRIGGER test_refuse"]


def test_a_range_whose_delete_fails_keeps_no_archive_and_a_rename_archives_nothing_twice(
    customer, archive_dir
):
    """The database refuses the third batch's delete after its archive was written: that
    archive is removed (it lists rows not deleted); the policy is renamed, the retry
    archives the range once, and every deleted row is in exactly one archive."""
    sessions = _sessions(customer, OLD, 6)
    create, drop = _refuse_delete_sql(sessions[4].pk)
    with connection.cursor() as cursor:
        for statement in create:
            cursor.execute(statement)
    policy = _policy(Session, archive=True)
    failed = policy_purge(policy=policy, actor=None, batch_size=2)
    assert (failed.status, failed.purged) == ("failed", 4)
    assert "deletion refused" in failed.error
    archived = [row["fields"]["id"] for row in _archived(archive_dir)]
    assert sorted(archived) == [s.pk for s in sessions[:4]]
    with connection.cursor() as cursor:
        for statement in drop:
            cursor.execute(statement)
    policy.name = "old sessions"
    policy.save()
    again = policy_purge(policy=policy, actor=None, batch_size=2)
    assert (again.status, again.purged) == ("succeeded", 2)
    ids = [row["fields"]["id"] for row in _archived(archive_dir)]
    assert sorted(ids) == [s.pk for s in sessions]
    logged = [a["file"] for r in PurgeRun.objects.all() for a in r.archives]
    assert sorted(logged) == sorted(
        str(p.relative_to(archive_dir)) for p in archive_dir.rglob("*.jsonl.gz")
    )


def test_soft_deleted_customers_are_purged_after_the_grace_period(db):
    """Basis deleted_at: a customer deleted 40 days ago goes for good, one deleted today stays."""
    early = Customer.objects.create(email="early@example.org", full_name="Early")
    late = Customer.objects.create(email="late@example.org", full_name="Late")
    early.delete()
    late.delete()
    Customer.all_objects.filter(pk=early.pk).update(deleted_at=timezone.now() - timedelta(days=40))
    policy = _policy(Customer, name="deleted customers", basis_field="deleted_at", period_days=30)
    assert policy_purge(policy=policy, actor=None).purged == 1
    assert list(Customer.all_objects.values_list("pk", flat=True)) == [late.pk]


def test_a_history_table_can_be_a_policys_target(customer):
    """Old history rows of sessions are purged by their history date."""
    _sessions(customer, NEW, 2)
    Session.history.update(history_date=OLD)
    policy = _policy(Session.history.model, name="old session history")
    assert policy_purge(policy=policy, actor=None).purged == 2
    assert Session.objects.count() == 2


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"basis_field": "ip_address"}, "no date or datetime field 'ip_address'"),
        ({"exclusions": [{"field": "nope", "lookup": "exact", "value": 1}]}, "no field 'nope'"),
        (
            {"exclusions": [{"field": "ip_address", "lookup": "regex", "value": "."}]},
            "lookup 'regex' is not one of",
        ),
        ({"exclusions": [{"field": "created_at", "lookup": "isnull"}]}, "exactly"),
        ({"action": PolicyAction.SOFT_DELETE}, "has no soft delete"),
    ],
)
def test_invalid_policies_are_refused_with_a_message(db, fields, problem):
    """Each mistake is named; nothing runs."""
    policy = RetentionPolicy(
        name="bad", target=ContentType.objects.get_for_model(Session), period_days=1, **fields
    )
    with pytest.raises(ValidationError) as caught:
        policy_validate(policy)
    assert problem in str(caught.value)


def test_a_policy_on_an_unregistered_model_is_refused(db):
    """Only the registry's models (and their history) can be targets."""
    policy = RetentionPolicy(
        name="users", target=ContentType.objects.get(app_label="auth", model="user"), period_days=1
    )
    with pytest.raises(ValidationError, match="neither in the registry"):
        policy_validate(policy)


def test_command_dry_run_prints_per_policy_and_exits_zero(customer):
    """purge_expired --dry-run prints the counts and changes nothing."""
    _sessions(customer, OLD, 3)
    _policy(Session)
    out = StringIO()
    call_command("purge_expired", "--dry-run", stdout=out)
    assert "sessions: 3 eligible, 0 held, 0 excluded, 1 batch(es) [dry run" in out.getvalue()
    assert Session.objects.count() == 3


def test_command_unknown_policy_is_a_clear_error(db):
    """--policy with an unknown name lists the policies instead of failing silently."""
    _policy(Session)
    with pytest.raises(CommandError, match="No policy named 'x'. Policies: sessions."):
        call_command("purge_expired", "--policy", "x", stdout=StringIO())


def test_command_exits_non_zero_when_a_policy_fails(customer, monkeypatch):
    """A failed policy is reported on stderr and the command fails."""
    _sessions(customer, OLD, 1)
    _policy(Session)
    monkeypatch.setattr(services, "rows_delete", lambda model, batch: 1 / 0)
    err = StringIO()
    with pytest.raises(CommandError, match="Failed: sessions"):
        call_command("purge_expired", stdout=StringIO(), stderr=err)
    assert "ZeroDivisionError" in err.getvalue()
    assert PurgeRun.objects.get().status == "failed"


def test_two_workers_share_a_purge_without_touching_a_row_twice(postgres, transactional_db):
    """Two concurrent runs of one policy (SKIP LOCKED) purge every row exactly once."""
    owner = Customer.objects.create(email="many@example.org", full_name="Many")
    _sessions(owner, OLD, 400)
    policy = _policy(Session)
    runs, errors = [], []

    def worker():
        try:
            runs.append(policy_purge(policy=policy, actor=None, batch_size=25))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(run.purged for run in runs) == 400
    assert not Session.objects.exists()
    assert Session.history.filter(history_type="-").count() == 400


def test_inserts_and_updates_during_a_purge_get_no_errors(postgres, transactional_db):
    """While a purge runs, another connection inserts and updates sessions of the same table:
    neither side sees an error or a deadlock, exactly the expired rows go, and every recent
    row — those there before and each one inserted meanwhile — stays, with its updates."""
    owner = Customer.objects.create(email="busy@example.org", full_name="Busy")
    expired = {s.pk for s in _sessions(owner, OLD, 300)}
    live = _sessions(owner, NEW, 20)
    policy = _policy(Session)
    stop, errors, runs, inserted = threading.Event(), [], [], []
    purging = threading.Event()

    def writer():
        try:
            while not stop.is_set() or len(inserted) < 3:
                fresh = _sessions(owner, NEW, 1)[0]
                Session.objects.filter(pk__in=[s.pk for s in live]).update(user_agent="UA2")
                fresh.user_agent = "UA3"
                fresh.save()
                inserted.append(fresh.pk)
                if len(inserted) == 3:
                    purging.set()  # the purge starts once writes are under way
        except Exception as exc:  # reported below
            errors.append(exc)
            purging.set()
        finally:
            connection.close()

    def purger():
        try:
            purging.wait(timeout=30)
            runs.append(policy_purge(policy=policy, actor=None, batch_size=10))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    background = threading.Thread(target=writer)
    background.start()
    purge = threading.Thread(target=purger)
    purge.start()
    purge.join()
    stop.set()
    background.join()
    assert errors == []
    assert (runs[0].status, runs[0].purged) == ("succeeded", 300)
    remaining = set(Session.objects.values_list("pk", flat=True))
    assert remaining == {s.pk for s in live} | set(inserted)
    assert not remaining & expired
    assert set(Session.history.filter(history_type="-").values_list("id", flat=True)) == expired
    assert set(Session.objects.filter(pk__in=inserted).values_list("user_agent", flat=True)) == {
        "UA3"
    }
    assert set(
        Session.objects.filter(pk__in=[s.pk for s in live]).values_list("user_agent", flat=True)
    ) == {"UA2"}


def test_a_hold_on_a_dependant_keeps_its_parent_from_the_purge(db):
    """A held document keeps its (deleted, expired) owner: the cascade would take it."""
    owner = Customer.objects.create(email="held-doc@example.org", full_name="Owner", created_at=OLD)
    document = Document.objects.create(owner=owner, title="Contract", content="evidence")
    hold_place(record=document, reason="litigation", ground="art17_3_e", actor=None)
    run = policy_purge(policy=_policy(Customer, name="customers"), actor=None)
    assert (run.purged, run.held) == (0, 1)
    assert Document.all_objects.filter(pk=document.pk).exists()


def test_a_hold_placed_during_a_run_is_honoured_by_its_next_batches(customer, monkeypatch):
    """The hold is read by every batch's statements, not once at the start."""
    first, second = (
        _sessions(customer, OLD, 1)[0],
        _sessions(Customer.objects.create(email="later@example.org", full_name="Later"), OLD, 1)[0],
    )
    real_delete = services.rows_delete

    def delete_then_hold(model, batch):
        done = real_delete(model, batch)
        if not LegalHold.objects.exists():
            hold_place(record=second.customer, reason="new claim", ground="art17_3_e", actor=None)
        return done

    monkeypatch.setattr(services, "rows_delete", delete_then_hold)
    run = policy_purge(policy=_policy(Session), actor=None, batch_size=1)
    assert not Session.objects.filter(pk=first.pk).exists()
    assert Session.objects.filter(pk=second.pk).exists() and run.purged == 1


def test_rows_other_records_protect_are_left_and_the_rest_purged(customer):
    """An order protects its customer: that customer stays (excluded), the other goes."""
    from decimal import Decimal

    from shop.models import Order

    protected = Customer.objects.create(
        email="orders@example.org", full_name="Buyer", created_at=OLD
    )
    Order.objects.create(
        customer=protected, number="B-1", total=Decimal("1.00"), shipping_name="B",
        shipping_address="1 Road", shipping_postcode="N1", shipping_city="London",
        shipping_country="GB",
    )  # fmt: skip
    free = Customer.objects.create(email="free@example.org", full_name="Free", created_at=OLD)
    policy = _policy(Customer, name="customers")
    run = policy_purge(policy=policy, actor=None, batch_size=1)
    assert (run.status, run.purged, run.excluded) == ("succeeded", 1, 1)
    assert Customer.all_objects.filter(pk=protected.pk).exists()
    assert not Customer.all_objects.filter(pk=free.pk).exists()


def test_an_anonymise_policy_on_a_history_table_skips_fields_history_does_not_keep(customer):
    """Session history has no token (excluded from history): the policy still runs."""
    _sessions(customer, NEW, 1)
    Session.history.update(history_date=OLD)
    policy = _policy(Session.history.model, name="session history", action=PolicyAction.ANONYMISE)
    run = policy_purge(policy=policy, actor=None)
    assert (run.status, run.purged) == ("succeeded", 1)
    assert set(Session.history.values_list("user_agent", flat=True)) == {"[redacted]"}


def test_policy_changes_never_put_exclusion_values_in_the_ledger(db):
    """The ledger names the excluded field and lookup, not the value (it may be personal)."""
    from retention.services import policy_save

    policy = RetentionPolicy(
        name="events",
        target=ContentType.objects.get_for_model(AnalyticsEvent),
        period_days=30,
        exclusions=[{"field": "name", "lookup": "exact", "value": "ada@example.org"}],
    )
    policy_save(policy=policy, actor=None, reason="")
    entry = LedgerEntry.objects.get(action="policy_change")
    assert entry.details["exclusions"] == ["name__exact"]
    assert "ada@example.org" not in str(entry.details)


def test_an_anonymise_policy_leaves_rows_an_earlier_run_anonymised(customer):
    """A second run of an anonymise policy finds nothing left: no update, no history row."""
    _sessions(customer, OLD, 2)
    policy = _policy(Session, name="sessions", action=PolicyAction.ANONYMISE)
    first = policy_purge(policy=policy, actor=None)
    versions = Session.history.count()

    second = policy_purge(policy=policy, actor=None)

    assert (first.purged, second.purged) == (2, 0)
    assert Session.history.count() == versions
    assert set(Session.objects.values_list("user_agent", flat=True)) == {"[redacted]"}


@pytest.mark.parametrize("action", [PolicyAction.HARD_DELETE, PolicyAction.ANONYMISE])
def test_an_archived_policy_passes_over_a_range_with_no_expired_row(customer, archive_dir, action):
    """A key range holding only recent rows is done without an archive: the run succeeds and
    nothing stays pending, and no empty archive file is left."""
    old = _sessions(customer, OLD, 2)
    _sessions(customer, NEW, 2)  # the second range of two keys: nothing expired
    old += _sessions(customer, OLD, 1)
    policy = _policy(Session, archive=True, action=action)
    run = policy_purge(policy=policy, actor=None, batch_size=2)
    assert (run.status, run.purged, run.batches, run.error) == ("succeeded", 3, 3, "")
    files = sorted(archive_dir.rglob("*.jsonl.gz"))
    assert len(files) == len(run.archives) == 2
    assert sorted(r["fields"]["id"] for r in _archived(archive_dir)) == [s.pk for s in old]
    assert not BatchRange.objects.exists()
    again = policy_purge(policy=policy, actor=None, batch_size=2)
    assert (again.status, again.purged, again.archives) == ("succeeded", 0, [])
    assert len(sorted(archive_dir.rglob("*.jsonl.gz"))) == 2


def _dead_pid():
    """The number of a process that has exited."""
    import subprocess

    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_each_committed_batch_is_a_ledger_entry_of_its_own(customer, archive_dir):
    """A purge_batch entry per batch that changed rows, with its counts, range and archive;
    the run's closing entry sums them."""
    _sessions(customer, OLD, 3)
    _sessions(customer, NEW, 2)
    _sessions(customer, OLD, 1)
    run = policy_purge(policy=_policy(Session, archive=True), actor=None, batch_size=2)
    batches = LedgerEntry.objects.filter(action="purge_batch").order_by("id")
    assert [e.counts for e in batches] == [
        {"purged": 2, "archived": 2},
        {"purged": 1, "archived": 1},
        {"purged": 1, "archived": 1},
    ]
    assert {e.details["run"] for e in batches} == {run.pk}
    assert [e.details["sha256"] for e in batches] == [a["sha256"] for a in run.archives]
    closing = LedgerEntry.objects.get(action="purge")
    assert closing.pk > batches.last().pk and closing.counts["purged"] == 4 == run.purged


def test_the_next_run_closes_a_run_whose_process_is_gone_as_interrupted(customer):
    """A run left running by a dead process is closed with its counts and a ledger entry."""
    _sessions(customer, OLD, 2)
    policy = _policy(Session)
    dead = PurgeRun.objects.create(
        policy=policy,
        started_at=timezone.now() - timedelta(minutes=5),
        status="running",
        purged=7,
        batches=2,
        pid=_dead_pid(),
    )
    run = policy_purge(policy=policy, actor=None)
    dead.refresh_from_db()
    assert (dead.status, dead.purged, dead.batches) == ("interrupted", 7, 2)
    assert dead.finished_at is not None and "stopped" in dead.error
    entry = LedgerEntry.objects.get(action="purge", details__run=dead.pk)
    assert entry.details["status"] == "interrupted" and entry.counts["purged"] == 7
    assert run.status == "succeeded"


def test_a_running_run_whose_process_lives_is_left_running(customer):
    """Only runs whose process is gone are closed: a live one (this process) stays running."""
    from retention.services import _run_lock, _run_unlock

    policy = _policy(Session)
    live = PurgeRun.objects.create(
        policy=policy, started_at=timezone.now(), status="running", pid=os.getpid()
    )
    _run_lock(live)
    try:
        policy_purge(policy=policy, actor=None)
    finally:
        _run_unlock(live)
    live.refresh_from_db()
    assert live.status == "running"


def test_the_next_run_removes_stray_partial_archives(customer, archive_dir):
    """A `.part` left by a killed run (its range no longer pending) is removed."""
    _sessions(customer, OLD, 1)
    policy = _policy(Session, archive=True)
    stray = archive_dir / f"{policy.pk}-sessions" / "range-999-0-10.jsonl.gz.part"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"half")
    run = policy_purge(policy=policy, actor=None)
    assert not stray.exists() and run.archived == 1


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-seconds", "-1", "--max-seconds must be a positive number of seconds"),
        ("--max-seconds", "0", "--max-seconds must be a positive number of seconds"),
        ("--max-seconds", "nan", "--max-seconds must be a positive number of seconds"),
        ("--max-seconds", "inf", "--max-seconds must be a positive number of seconds"),
        ("--batch-size", "0", "--batch-size must be at least 1"),
        ("--batch-size", "-5", "--batch-size must be at least 1"),
    ],
)
def test_purge_command_refuses_a_budget_or_batch_that_is_not_positive(
    customer, option, value, message
):
    """A budget of no time or a batch of no rows is a usage error: no policy runs, no run is
    logged, nothing is said to have stopped at its budget."""
    _policy(Session)
    when = timezone.now() - timedelta(days=200)
    Session.objects.create(customer=customer, created_at=when, expires_at=when)
    out = StringIO()
    with pytest.raises(CommandError, match=message):
        call_command("purge_expired", option, value, stdout=out)
    assert not PurgeRun.objects.exists() and out.getvalue() == ""
    assert Session.objects.count() == 1


def test_a_policys_clean_asks_the_registered_rules(db):
    """`RetentionPolicy.clean` (model forms, `full_clean`) runs the rules the retention app
    registers when ready: the same refusal as `policy_validate`."""
    assert RetentionPolicy.validator is policy_validate
    policy = RetentionPolicy(
        name="users", target=ContentType.objects.get(app_label="auth", model="user"), period_days=1
    )
    with pytest.raises(ValidationError, match="neither in the registry"):
        policy.clean()
