"""The backfill service and command, on the shared batch engine.

Notifications' `read_at` (nullable) filled from `created_at` stand in for a new column and
its source: the service is the same for any pair of columns of one type.
"""

from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.utils import timezone

from operations.backfill import BackfillRefused, backfill_job, column_backfill
from retention.models import BatchRange
from shop.models import Notification


def _notifications(customer, count):
    Notification.objects.bulk_create(
        Notification(customer=customer, kind="order", title=f"N{n}") for n in range(count)
    )
    return list(Notification.objects.order_by("pk"))


def _backfill(**options):
    return column_backfill(
        model=Notification, target="read_at", source="created_at", progress=False, **options
    )


def test_backfill_copies_source_into_empty_target_only(customer):
    """Rows with an empty target get the source; a target already set is left alone."""
    rows = _notifications(customer, 5)
    kept = timezone.now().replace(year=2020)
    Notification.objects.filter(pk=rows[0].pk).update(read_at=kept)

    report = _backfill(batch_size=2)

    assert report.finished and report.rows == 4 and report.batches == 3
    assert Notification.objects.get(pk=rows[0].pk).read_at == kept
    for row in Notification.objects.exclude(pk=rows[0].pk):
        assert row.read_at == row.created_at
    assert not BatchRange.objects.filter(job=backfill_job(Notification, "read_at")).exists()


def test_backfill_resumes_after_a_stopped_run(customer):
    """A run stopped by its budget leaves its ranges; the next run finishes the rest."""
    _notifications(customer, 6)

    first = _backfill(batch_size=2, max_rows=2)
    assert not first.finished and first.rows == 2
    assert Notification.objects.filter(read_at__isnull=True).count() == 4
    pending = BatchRange.objects.filter(job="backfill:shop.notification:read_at", done=False)
    assert pending.count() == 2

    second = _backfill(batch_size=2)
    assert second.finished and second.rows == 4 and second.batches == 2
    assert not Notification.objects.filter(read_at__isnull=True).exists()


def test_backfill_leaves_rows_written_after_it_started(customer):
    """The job covers the rows up to the top key it planned with; later rows wait."""
    _notifications(customer, 4)
    first = _backfill(batch_size=2, max_rows=2)
    later = Notification.objects.create(customer=customer, kind="order", title="Later")

    resumed = _backfill(batch_size=2)

    assert first.top < later.pk and resumed.top == first.top
    assert resumed.finished and first.rows + resumed.rows == 4
    assert Notification.objects.get(pk=later.pk).read_at is None
    assert _backfill(batch_size=2).rows == 1  # a new job covers it


def test_backfill_pauses_between_batches(customer):
    """--pause waits between two batches (none before the first)."""
    _notifications(customer, 3)
    report = _backfill(batch_size=1, pause=0.01)
    assert (report.batches, report.pauses) == (3, 2)
    assert _backfill(batch_size=1, pause=0).pauses == 0


@pytest.mark.parametrize(
    ("target", "source", "message"),
    [
        ("read_at", "nope", "has no field 'nope'"),
        ("read_at", "read_at", "the same field"),
        ("title", "body", "cannot be null"),
        ("read_at", "title", "same type"),
        ("read_at", "customer", "not a plain column"),
    ],
)
def test_backfill_refuses_fields_it_cannot_copy(db, target, source, message):
    """Unknown fields, a non-null target, relations and type mismatches are refused."""
    with pytest.raises(BackfillRefused, match=message):
        column_backfill(model=Notification, target=target, source=source)


def test_backfill_by_a_named_user_needs_a_superuser(officer):
    """Schema work is not an officer's: a named actor must be a superuser."""
    with pytest.raises(PermissionDenied):
        column_backfill(model=Notification, target="read_at", source="created_at", actor=officer)


def test_backfill_command_dry_run_counts_and_changes_nothing(customer):
    """--dry-run reports rows and batches and writes nothing."""
    _notifications(customer, 5)
    out = StringIO()
    call_command(
        "backfill", "shop.Notification", "read_at", "--from", "created_at", "--dry-run",
        "--batch-size", "2", stdout=out,
    )  # fmt: skip
    assert "5 row(s) to backfill" in out.getvalue() and "3 batch(es)" in out.getvalue()
    assert Notification.objects.filter(read_at__isnull=True).count() == 5


def test_backfill_command_runs_and_reports(customer):
    """The command fills the rows and says the job finished."""
    _notifications(customer, 3)
    out = StringIO()
    call_command("backfill", "shop.Notification", "read_at", "--from", "created_at", stdout=out)
    assert "3 row(s) backfilled" in out.getvalue() and "Finished" in out.getvalue()
    assert not Notification.objects.filter(read_at__isnull=True).exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["shop.Nope", "read_at", "--from", "created_at"], "Unknown model 'shop.Nope'"),
        (["Notification", "read_at", "--from", "created_at"], "APP.MODEL"),
        (["shop.Notification", "read_at", "--from", "kind"], "same type"),
        (["shop.Notification", "read_at", "--from", "created_at", "--batch-size", "0"], "least"),
        (["shop.Notification", "read_at", "--from", "created_at", "--as-of", "9999"], "9999"),
    ],
)
def test_backfill_command_errors_are_clear(db, arguments, message):
    """Wrong models, fields and options are a CommandError that says what to fix."""
    with pytest.raises(CommandError, match=message):
        call_command("backfill", *arguments, stdout=StringIO())
