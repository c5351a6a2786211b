"""Data-subject requests: statutory clocks, the one extension, states, ledger, due report."""

import json
import logging
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import models
from django.test import override_settings
from django.utils import timezone

from compliance.models import (
    Jurisdiction,
    SubjectRequest,
    add_days,
    add_months,
    request_due,
    request_latest_due,
)
from compliance.registry import Erasure, registry
from compliance.selectors import requests_due, subject_walk
from compliance.services import (
    ComplianceRefused,
    request_complete,
    request_create,
    request_extend,
    request_reject,
    request_start,
    request_verify,
)
from compliance.tasks import requests_due_report
from shop.models import Customer
from versions.models import LedgerAction, LedgerEntry

GDPR, CCPA = Jurisdiction.GDPR, Jurisdiction.CCPA
Kind, State, Method = SubjectRequest.Kind, SubjectRequest.State, SubjectRequest.VerificationMethod


def _at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _create(customer, actor=None, *, days_ago=0, jurisdiction=GDPR, kind=Kind.ACCESS):
    return request_create(
        subject=customer,
        kind=kind,
        jurisdiction=jurisdiction,
        received_at=timezone.now() - timedelta(days=days_ago),
        actor=actor,
    )


def _verified(request, actor=None):
    return request_verify(request=request, actor=actor, method=Method.EMAIL, note="link confirmed")


def _every_step(request, actor):
    """Each service that moves `request` on, as a call by `actor`."""
    return [
        lambda: _verified(request, actor),
        lambda: request_start(request=request, actor=actor),
        lambda: request_complete(request=request, actor=actor),
        lambda: request_reject(request=request, actor=actor, reason="No"),
        lambda: request_extend(request=request, actor=actor, reason="More", days=3),
    ]


def _ledger():
    return list(LedgerEntry.objects.filter(action=LedgerAction.REQUEST).order_by("id"))


# The clocks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (_at(2025, 3, 15, 10, 30), _at(2025, 4, 15, 10, 30)),
        (_at(2025, 1, 31, 9), _at(2025, 2, 28, 9)),  # February is shorter: its last day
        (_at(2025, 3, 31, 9), _at(2025, 4, 30, 9)),
        (_at(2025, 8, 31, 9), _at(2025, 9, 30, 9)),
        (_at(2024, 12, 31, 23), _at(2025, 1, 31, 23)),  # across the year
        (_at(2025, 2, 28, 9), _at(2025, 3, 28, 9)),  # not "the end of the month"
    ],
)
def test_gdpr_due_is_one_calendar_month_from_receipt_clamped_to_month_end(received, due):
    """One calendar month later; a day the next month lacks becomes its last day."""
    assert request_due(GDPR, received) == due


@pytest.mark.parametrize(
    ("received", "due", "latest"),
    [
        (_at(2024, 1, 31, 9), _at(2024, 2, 29, 9), _at(2024, 4, 30, 9)),
        (_at(2024, 1, 29, 9), _at(2024, 2, 29, 9), _at(2024, 4, 29, 9)),
        (_at(2024, 2, 29, 9), _at(2024, 3, 29, 9), _at(2024, 5, 29, 9)),
        (_at(2023, 11, 30, 9), _at(2023, 12, 30, 9), _at(2024, 2, 29, 9)),
        (_at(2024, 11, 30, 9), _at(2024, 12, 30, 9), _at(2025, 2, 28, 9)),
    ],
)
def test_gdpr_due_dates_in_leap_years(received, due, latest):
    """29 February exists in leap years only; the latest date is three months from receipt."""
    assert request_due(GDPR, received) == due
    assert request_latest_due(GDPR, received) == latest


def test_ccpa_due_is_45_days_and_latest_90_days_from_receipt():
    """Calendar days, leap day included."""
    assert request_due(CCPA, _at(2025, 1, 1, 9)) == _at(2025, 2, 15, 9)
    assert request_latest_due(CCPA, _at(2025, 1, 1, 9)) == _at(2025, 4, 1, 9)
    assert request_due(CCPA, _at(2024, 2, 1, 9)) == _at(2024, 3, 17, 9)  # 29 days in February
    assert request_due(CCPA, _at(2025, 2, 1, 9)) == _at(2025, 3, 18, 9)


@override_settings(TIME_ZONE="Europe/Berlin")
def test_due_dates_keep_the_local_time_of_day_across_a_clock_change():
    """Counted on the local calendar: 10:00 in Berlin stays 10:00 across summer time."""
    received = _at(2025, 3, 15, 9)  # 10:00 CET
    assert timezone.localtime(add_months(received, 1)).hour == 10  # CEST
    assert add_months(received, 1) == _at(2025, 4, 15, 8)
    assert add_days(received, 45) == _at(2025, 4, 29, 8)


# GDPR and CCPA rules ---------------------------------------------------------------------


def test_gdpr_art_12_3_answer_within_one_month_of_receipt(customer, officer):
    """A GDPR request is due one month after it was received, not after it was recorded."""
    received = _at(2024, 1, 31, 14)
    request = request_create(
        subject=customer, kind=Kind.ACCESS, jurisdiction=GDPR, received_at=received, actor=officer
    )
    assert request.due_at == _at(2024, 2, 29, 14)
    assert request.state == State.RECEIVED and request.received_at == received


def test_gdpr_art_12_3_one_extension_of_two_months_with_reason_within_first_month(
    customer, officer
):
    """Extended once, by two months, with its reason, inside the first month; not after."""
    request = _create(customer, officer, days_ago=10)
    extended = request_extend(request=request, actor=officer, reason="Many systems", months=2)
    assert extended.due_at == add_months(request.received_at, 3) == extended.latest_due_at
    assert extended.extension_reason == "Many systems"
    assert extended.extended_by == officer and extended.extended_at is not None
    with pytest.raises(ComplianceRefused, match="already extended.*one extension"):
        request_extend(request=extended, actor=officer, reason="Again", days=1)

    late = _create(customer, officer, days_ago=32)
    with pytest.raises(ComplianceRefused, match="Too late.*within the first month"):
        request_extend(request=late, actor=officer, reason="Many systems", months=2)
    no_reason = _create(customer, officer, days_ago=1)
    with pytest.raises(ComplianceRefused, match="Give the reason"):
        request_extend(request=no_reason, actor=officer, reason="  ", months=2)
    for fresh in (late, no_reason):
        fresh.refresh_from_db()
        assert fresh.extended_at is None and fresh.due_at == fresh.original_due_at


def test_gdpr_art_12_4_refusal_states_its_reason(customer, officer):
    """A rejection without a reason is refused; with one, the reason is kept and ledgered."""
    request = _create(customer, officer)
    with pytest.raises(ComplianceRefused, match="Give the reason for the refusal"):
        request_reject(request=request, actor=officer, reason="")
    request.refresh_from_db()
    assert request.state == State.RECEIVED
    rejected = request_reject(request=request, actor=officer, reason="Manifestly unfounded")
    assert rejected.state == State.REJECTED
    assert rejected.rejection_reason == "Manifestly unfounded" and rejected.rejected_at
    assert _ledger()[-1].reason == "Manifestly unfounded"


def test_ccpa_45_days_extendable_once_by_45_within_first_45_days(customer, officer):
    """45 days; one extension of at most 45 more, given within the first 45 days."""
    request = _create(customer, officer, days_ago=20, jurisdiction=CCPA)
    assert request.due_at == add_days(request.received_at, 45)
    too_far = _create(customer, officer, days_ago=20, jurisdiction=CCPA)
    with pytest.raises(ComplianceRefused, match="beyond the legal maximum.*45 more days"):
        request_extend(request=too_far, actor=officer, reason="Volume", days=46)
    extended = request_extend(request=request, actor=officer, reason="Volume", days=45)
    assert extended.due_at == add_days(request.received_at, 90)
    with pytest.raises(ComplianceRefused, match="already extended"):
        request_extend(request=extended, actor=officer, reason="Volume", days=1)
    late = _create(customer, officer, days_ago=46, jurisdiction=CCPA)
    with pytest.raises(ComplianceRefused, match="within the first 45 days"):
        request_extend(request=late, actor=officer, reason="Volume", days=10)


def test_ccpa_verification_does_not_stop_the_clock(customer, officer):
    """Verifying 30 days after receipt leaves the due date 45 days after receipt."""
    request = _create(customer, officer, days_ago=30, jurisdiction=CCPA)
    due = request.due_at
    verified = _verified(request, officer)
    assert verified.due_at == due == add_days(request.received_at, 45)
    started = request_start(request=verified, actor=officer)
    assert started.due_at == due


def test_gdpr_verification_does_not_stop_the_clock_either(customer, officer):
    """The same under the GDPR: the month runs from receipt."""
    request = _create(customer, officer, days_ago=25)
    assert _verified(request, officer).due_at == add_months(request.received_at, 1)


# Extensions ------------------------------------------------------------------------------


def test_extension_beyond_the_gdpr_maximum_is_refused(customer, officer):
    """Three further months, or a date past receipt + 3 months, is refused and changes nothing."""
    request = _create(customer, officer, days_ago=5)
    with pytest.raises(ComplianceRefused, match="beyond the legal maximum.*two further months"):
        request_extend(request=request, actor=officer, reason="Volume", months=3)
    too_late = (request.latest_due_at + timedelta(days=1)).date()
    with pytest.raises(ComplianceRefused, match="beyond the legal maximum"):
        request_extend(request=request, actor=officer, reason="Volume", due_at=too_late)
    request.refresh_from_db()
    assert request.extended_at is None and len(_ledger()) == 1


def test_extension_to_a_date_keeps_the_time_of_day_of_the_deadline(customer, officer):
    """A new due date (a day) is read at the hour the original deadline falls."""
    request = _create(customer, officer, days_ago=5)
    target = (request.due_at + timedelta(days=20)).date()
    extended = request_extend(request=request, actor=officer, reason="Volume", due_at=target)
    assert timezone.localtime(extended.due_at).date() == target
    assert timezone.localtime(extended.due_at).time() == timezone.localtime(request.due_at).time()


def test_extension_needs_a_later_date_and_exactly_one_way_to_give_it(customer, officer):
    """Neither or both of date and period, or a date not after the current one, is refused."""
    request = _create(customer, officer, days_ago=5)
    with pytest.raises(ComplianceRefused, match="either a new due date or a period"):
        request_extend(request=request, actor=officer, reason="Volume")
    with pytest.raises(ComplianceRefused, match="either a new due date or a period"):
        request_extend(
            request=request, actor=officer, reason="Volume", due_at=date.today(), months=1
        )
    with pytest.raises(ComplianceRefused, match="must be after the current one"):
        request_extend(request=request, actor=officer, reason="Volume", due_at=request.due_at)


# States ----------------------------------------------------------------------------------


def test_request_goes_received_verified_in_progress_completed(customer, officer):
    """Each step records when, and verification records who and how."""
    request = _create(customer, officer)
    verified = request_verify(
        request=request, actor=officer, method=Method.DOCUMENT, note="Passport seen, not kept"
    )
    assert verified.state == State.VERIFIED
    assert verified.verified_by == officer and verified.verified_at is not None
    assert verified.verification_method == Method.DOCUMENT
    assert verified.verification_note == "Passport seen, not kept"
    started = request_start(request=verified, actor=officer)
    assert started.state == State.IN_PROGRESS and started.started_at is not None
    completed = request_complete(request=started, actor=officer, reason="Export sent")
    assert completed.state == State.COMPLETED and completed.completed_at is not None
    assert completed.is_final


def test_transitions_out_of_order_are_refused_with_what_to_do(customer, officer):
    """Start before verifying, complete before starting, verify twice: each says what to do."""
    request = _create(customer, officer)
    with pytest.raises(ComplianceRefused, match="Verify the requester's identity first"):
        request_start(request=request, actor=officer)
    with pytest.raises(ComplianceRefused, match="only a request in progress can be completed"):
        request_complete(request=request, actor=officer)
    verified = _verified(request, officer)
    with pytest.raises(ComplianceRefused, match="verified already"):
        _verified(verified, officer)
    with pytest.raises(ComplianceRefused, match="start the request first"):
        request_complete(request=verified, actor=officer)
    with pytest.raises(ComplianceRefused, match="Say how the identity was verified"):
        request_verify(request=_create(customer, officer), actor=officer, method="telepathy")
    assert SubjectRequest.objects.get(pk=request.pk).state == State.VERIFIED


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_rejection_is_possible_until_completion(customer, officer, steps):
    """Received, verified or in progress: each can be rejected."""
    request = _create(customer, officer)
    if steps >= 1:
        request = _verified(request, officer)
    if steps >= 2:
        request = request_start(request=request, actor=officer)
    assert request_reject(request=request, actor=officer, reason="Unfounded").state == "rejected"


@pytest.mark.parametrize("end", ["completed", "rejected"])
def test_completed_or_rejected_request_is_final(customer, officer, end):
    """Nothing moves a closed request: every service refuses and says to record a new one."""
    request = request_start(request=_verified(_create(customer, officer)), actor=officer)
    if end == "completed":
        request = request_complete(request=request, actor=officer)
    else:
        request = request_reject(request=request, actor=officer, reason="Unfounded")
    for attempt in _every_step(request, officer):
        with pytest.raises(ComplianceRefused, match="final.*record a new request"):
            attempt()
    assert SubjectRequest.objects.get(pk=request.pk).state == end
    assert len(_ledger()) == 4  # create, verify, start, the closing step; nothing after
    assert _ledger()[-1].details["to"] == end


def test_create_refuses_a_future_receipt_a_missing_subject_and_unknown_choices(customer, officer):
    """Each refusal names what to give instead; nothing is recorded."""
    tomorrow = timezone.now() + timedelta(days=1)
    cases = [
        ({"received_at": tomorrow}, "in the future"),
        ({"subject": None}, "Choose the customer"),
        ({"kind": "portability"}, "Unknown kind"),
        ({"jurisdiction": "lgpd"}, "Unknown jurisdiction"),
    ]
    for change, message in cases:
        options = {"subject": customer, "kind": Kind.ACCESS, "jurisdiction": GDPR, **change}
        with pytest.raises(ComplianceRefused, match=message):
            request_create(actor=officer, **options)
    assert not SubjectRequest.objects.exists() and not _ledger()


def test_request_outlives_the_deletion_of_its_subject_row(customer, officer):
    """The subject link becomes empty; the subject's key stays on the record."""
    request = _create(customer, officer)
    models.QuerySet.delete(Customer.all_objects.filter(pk=customer.pk))  # for good
    request.refresh_from_db()
    assert request.subject is None and request.subject_key == str(customer.pk)


def test_request_holds_no_personal_data_of_its_own(customer, officer):
    """No column of a request carries the subject's email, name or phone."""
    request = _verified(_create(customer, officer), officer)
    values = json.dumps(list(SubjectRequest.objects.filter(pk=request.pk).values()), default=str)
    for personal in (customer.email, customer.full_name, customer.phone):
        assert str(personal) not in values


# Ledger, history, permissions -------------------------------------------------------------


def test_each_state_change_is_a_ledger_entry_without_personal_data(customer, officer):
    """create, verify, extend, start, complete: five entries with id, kind and states only."""
    request = _create(customer, officer, days_ago=3)
    request = request_verify(
        request=request, actor=officer, method=Method.DOCUMENT, note="Passport P1234567 seen"
    )
    request = request_extend(request=request, actor=officer, reason="Volume", months=1)
    request = request_start(request=request, actor=officer)
    request_complete(request=request, actor=officer)
    entries = _ledger()
    steps = [(e.details["transition"], e.details["from"], e.details["to"]) for e in entries]
    assert steps == [
        ("create", None, "received"),
        ("verify", "received", "verified"),
        ("extend", "verified", "verified"),
        ("start", "verified", "in_progress"),
        ("complete", "in_progress", "completed"),
    ]
    assert {e.details["request"] for e in entries} == {request.pk}
    assert {e.details["kind"] for e in entries} == {"access"}
    assert {e.actor_id for e in entries} == {officer.pk}
    text = json.dumps([[e.target, e.reason, e.details, e.counts] for e in entries])
    for personal in (customer.email, customer.full_name, str(customer.phone), "P1234567"):
        assert personal not in text


def test_history_records_each_change_with_the_actor(customer, officer):
    """Creation and every step leave a history row carrying who acted."""
    request = request_start(request=_verified(_create(customer, officer), officer), actor=officer)
    rows = request.history.order_by("history_id")
    assert [row.state for row in rows] == ["received", "verified", "in_progress"]
    assert {row.history_user_id for row in rows} == {officer.pk}


def test_auditor_runs_no_request_service(customer, officer, auditor):
    """Every service refuses the auditor and changes nothing."""
    with pytest.raises(PermissionDenied):
        _create(customer, auditor)
    request = _create(customer, officer, days_ago=2)
    for attempt in _every_step(request, auditor):
        with pytest.raises(PermissionDenied):
            attempt()
    fresh = SubjectRequest.objects.get(pk=request.pk)
    assert fresh.state == State.RECEIVED and fresh.extended_at is None
    assert len(_ledger()) == 1 and SubjectRequest.objects.count() == 1


# Registry --------------------------------------------------------------------------------


def test_requests_are_declared_retained_for_accountability(customer, officer):
    """Declared in the registry: subject path, only the privacy center's contact details as
    personal fields, kept (Art. 5(2)), exported; the subject walk finds a person's requests."""
    entry = registry.get(SubjectRequest)
    assert entry.subject_paths == ["subject"]
    assert set(entry.fields) == {"contact_email", "details", "verified_ip"}
    assert entry.erasure == Erasure.RETAIN and "Art. 5(2)" in entry.legal_ground
    assert entry.exported
    request = _create(customer, officer)
    _create(Customer.objects.create(email="bob@example.org", full_name="Bob"), officer)
    walk = {rows.entry.label: rows for rows in subject_walk(customer)}
    assert list(walk["compliance.SubjectRequest"].rows) == [request]
    assert walk["compliance.SubjectRequest"].history.count() == 1


# Due report ------------------------------------------------------------------------------


@pytest.fixture
def deadlines(customer, officer):
    """One request overdue, one due in 3 days, one far off, and closed ones past due."""
    overdue = _create(customer, officer, days_ago=40)
    soon = _create(customer, officer, days_ago=42, jurisdiction=CCPA)  # due in 3 days
    far = _create(customer, officer, days_ago=1)
    done = request_start(request=_verified(_create(customer, officer, days_ago=50)), actor=officer)
    request_complete(request=done, actor=officer)
    request_reject(request=_create(customer, officer, days_ago=60), actor=officer, reason="No")
    return {"overdue": overdue, "soon": soon, "far": far}


def test_requests_due_lists_open_overdue_and_due_soon_requests(deadlines):
    """Closed requests are never overdue; far-off ones are not due soon."""
    report = requests_due()
    assert report.overdue == [deadlines["overdue"].pk]
    assert report.due_soon == [deadlines["soon"].pk]


def test_requests_due_takes_the_horizon_in_days(deadlines):
    """With 40 days' horizon the far-off request (due in about a month) is due soon too."""
    report = requests_due(days=40)
    assert report.due_soon == [deadlines["soon"].pk, deadlines["far"].pk]
    assert requests_due(days=2).due_soon == []


def test_due_report_task_logs_warnings_with_counts_and_ids(deadlines, caplog):
    """The daily task logs a WARNING per list with the count and the ids, and returns them."""
    with caplog.at_level(logging.INFO, logger="compliance.tasks"):
        result = requests_due_report.apply().get()
    overdue, soon = deadlines["overdue"].pk, deadlines["soon"].pk
    assert result == {"overdue": [overdue], "due_soon": [soon]}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"1 request(s) overdue: #{overdue}",
        f"1 request(s) due within 7 days: #{soon}",
    ]


def test_due_report_task_says_when_nothing_is_due(db, caplog):
    """No open request: no warning, an INFO line, empty lists."""
    with caplog.at_level(logging.INFO, logger="compliance.tasks"):
        assert requests_due_report.apply().get() == {"overdue": [], "due_soon": []}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "no request overdue" in caplog.text


def test_due_report_runs_daily_from_beat():
    """Beat's entry names the report as the worker registers it, every 24 hours."""
    from celery.schedules import maybe_schedule

    from project.celery import app

    app.loader.import_default_modules()  # what a worker imports before it runs anything
    entry = settings.CELERY_BEAT_SCHEDULE["requests-due-daily"]
    assert app.tasks[entry["task"]].run == requests_due_report.run  # KeyError: unknown task
    assert maybe_schedule(entry["schedule"]).run_every == timedelta(days=1)
    assert not entry.get("args") and not entry.get("kwargs")


def test_demo_seeds_requests_in_every_situation(db):
    """seed_demo adds one overdue, one due soon, one extended, one rejected with its reason."""
    with override_settings(DEMO=True):
        call_command("seed_demo", customers=10, no_logins=True, stdout=StringIO())
    report = requests_due()
    assert len(report.overdue) == 1 and len(report.due_soon) == 1
    assert SubjectRequest.objects.filter(extended_at__isnull=False).count() == 1
    rejected = SubjectRequest.objects.get(state=State.REJECTED)
    assert rejected.rejection_reason
    states = set(SubjectRequest.objects.values_list("state", flat=True))
    assert states == set(State.values)


# Answering a request: exports and erasures --------------------------------------------


def _answerable(customer, officer, *, kind=Kind.ACCESS):
    request = _create(customer, officer, kind=kind)
    return request_verify(request=request, actor=officer, method=Method.EMAIL)


@pytest.mark.parametrize("end", ["received", "rejected"])
def test_export_and_erasure_refuse_a_request_not_verified_and_nothing_runs(customer, officer, end):
    """A request still received (an impostor's, maybe) or rejected answers to nothing:
    export, queued export and erasure are refused and write nothing."""
    from compliance.models import ErasureCertificate, SubjectExport
    from compliance.services import subject_erase, subject_export, subject_export_queue

    request = _create(customer, officer)
    if end == "rejected":
        request = request_reject(request=request, actor=officer, reason="Unfounded")
    ledgered = LedgerEntry.objects.count()
    with pytest.raises(ComplianceRefused, match="verif"):
        subject_export(subject=customer, actor=officer, reason="r", request=request)
    with pytest.raises(ComplianceRefused, match="verif"):
        subject_export_queue(subject=customer, actor=officer, reason="r", request=request)
    with pytest.raises(ComplianceRefused, match="verif"):
        subject_erase(subject=customer, actor=officer, reason="r", request=request)
    assert not SubjectExport.objects.exists() and not ErasureCertificate.objects.exists()
    assert Customer.objects.get(pk=customer.pk).email == customer.email
    assert LedgerEntry.objects.count() == ledgered


def test_export_without_a_request_needs_the_officers_reason_and_says_so(customer, officer):
    """No request: refused without a reason; with one, the record and its ledger entry say
    it answers no request."""
    from compliance.models import SubjectExport
    from compliance.services import subject_export, subject_export_queue

    with pytest.raises(ComplianceRefused, match="answers no request"):
        subject_export(subject=customer, actor=officer, reason="  ")
    with pytest.raises(ComplianceRefused, match="answers no request"):
        subject_export_queue(subject=customer, actor=officer, reason="")
    assert not SubjectExport.objects.exists()
    export = subject_export(subject=customer, actor=officer, reason="Audit of the CRM")
    assert export.request is None and export.answers == "no request: Audit of the CRM"
    entry = LedgerEntry.objects.get(action=LedgerAction.EXPORT)
    assert entry.details["request"] is None


def test_export_and_erasure_answer_a_verified_request(customer, officer):
    """A verified request is answered: the export and the certificate name it."""
    from compliance.services import subject_erase, subject_export

    access = _answerable(customer, officer)
    export = subject_export(subject=customer, actor=officer, reason="", request=access)
    assert export.request == access and export.answers == f"request #{access.pk}"
    erasure = _answerable(customer, officer, kind=Kind.ERASURE)
    result = subject_erase(subject=customer, actor=officer, reason="asked", request=erasure)
    assert result.certificate.request == erasure


def test_a_finished_export_moves_its_request_to_in_progress(customer, officer, settings, tmp_path):
    """The export's ZIP is ready: its request awaits delivery (in progress), in one
    transaction with the export's ledger entry; a failed export leaves the request verified."""
    from compliance.services import subject_export

    settings.COMPLIANCE_EXPORT_DIR = tmp_path
    access = _answerable(customer, officer)

    def fail(label, rows):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        subject_export(subject=customer, actor=officer, reason="", request=access, progress=fail)
    access.refresh_from_db()
    assert access.state == State.VERIFIED
    export = subject_export(subject=customer, actor=officer, reason="", request=access)
    access.refresh_from_db()
    assert access.state == State.IN_PROGRESS and access.started_at == export.finished_at
    step = LedgerEntry.objects.filter(action=LedgerAction.REQUEST).latest("id")
    assert step.details["transition"] == "start" and step.details["export"] == export.pk
    assert step.actor == officer
    # A second export of the same request leaves it in progress.
    subject_export(subject=customer, actor=officer, reason="", request=access)
    access.refresh_from_db()
    assert access.state == State.IN_PROGRESS


def test_an_erasure_that_commits_completes_its_request_with_the_certificate(customer, officer):
    """The erasure answers its request: completed, the certificate in the step's entry."""
    from compliance.services import subject_erase

    erasure = _answerable(customer, officer, kind=Kind.ERASURE)
    result = subject_erase(subject=customer, actor=officer, reason="asked", request=erasure)
    erasure.refresh_from_db()
    assert erasure.state == State.COMPLETED and erasure.completed_at is not None
    step = LedgerEntry.objects.filter(action=LedgerAction.REQUEST).latest("id")
    assert step.details["transition"] == "complete"
    assert step.details["certificate"] == result.certificate.pk
    assert step.id > result.certificate.ledger_entry_id


# Two connections at once (PostgreSQL) ----------------------------------------------------


def _race(first, second):
    """Run `first` in a transaction that stays open a second after it acted, and `second`
    on another connection meanwhile; return their results (or exceptions) and how long the
    second waited."""
    import threading
    import time

    from django.db import connections, transaction

    acted, results = threading.Event(), {}

    def run_first():
        try:
            with transaction.atomic():
                results["first"] = first()
                acted.set()
                time.sleep(1)  # holding whatever `first` locked
        except Exception as exc:  # returned to the test
            results["first"] = exc
        finally:
            acted.set()
            connections.close_all()

    def run_second():
        try:
            acted.wait(10)
            started = time.monotonic()
            try:
                results["second"] = second()
            finally:
                results["waited"] = time.monotonic() - started
        except Exception as exc:  # returned to the test
            results["second"] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_erasures_of_one_subject_at_once_erase_once(
    postgres, transactional_db, customer, officer
):
    """The second erasure waits for the first's lock on the subject, then finds nothing
    left: one certificate, one ledger entry, no error."""
    from compliance.models import ErasureCertificate
    from compliance.services import subject_erase

    def erase():
        return subject_erase(subject=customer, actor=officer, reason="asked twice")

    results = _race(erase, erase)
    assert not isinstance(results["first"], Exception), results["first"]
    assert not isinstance(results["second"], Exception), results["second"]
    assert results["waited"] >= 0.5  # it waited for the lock, then read the committed state
    assert results["first"].certificate is not None and results["second"].nothing_left
    assert ErasureCertificate.objects.count() == 1
    assert LedgerEntry.objects.filter(action=LedgerAction.ERASURE).count() == 1


def test_two_state_changes_of_one_request_at_once_take_turns(
    postgres, transactional_db, customer, officer
):
    """A rejection and a verification of one request at the same moment: the second waits
    for the first's row lock and is refused on the state it then reads; one step recorded."""
    request = _create(customer, officer)

    results = _race(
        lambda: request_reject(request=request, actor=officer, reason="Unfounded"),
        lambda: request_verify(request=request, actor=officer, method=Method.EMAIL),
    )
    assert results["first"].state == State.REJECTED
    assert isinstance(results["second"], ComplianceRefused), results["second"]
    assert "final" in str(results["second"])
    assert results["waited"] >= 0.5
    request.refresh_from_db()
    assert request.state == State.REJECTED and request.verified_at is None
    steps = LedgerEntry.objects.filter(action=LedgerAction.REQUEST, details__request=request.pk)
    assert [e.details["transition"] for e in steps.order_by("id")] == ["create", "reject"]
