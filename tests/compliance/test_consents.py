"""Consents: the state's semantics, append-only events, texts fixed by their sha256, the
receipt, and consent_record as the one way in."""

import hashlib
import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from compliance.anonymisers import get_anonymiser
from compliance.models import (
    ConsentEvent,
    ConsentPurpose,
    ConsentState,
    ConsentText,
    ConsentTextLocked,
    text_sha256,
)
from compliance.selectors import consent_receipt, consent_timeline
from compliance.services import ComplianceRefused, consent_record
from versions.models import LedgerEntry
from versions.setbased import rows_update_with_history

IP = "203.0.113.9"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) Consent-Test/1"
WORDING = "Yes, send me offers by email.\n  (Unsubscribe at any time.) "


@pytest.fixture
def marketing(db):
    purpose = ConsentPurpose.objects.create(slug="marketing", name="Marketing emails")
    ConsentText.objects.create(
        purpose=purpose, version=1, text=WORDING, published_at=timezone.now() - timedelta(days=9)
    )
    return purpose


@pytest.fixture
def analytics(db):
    purpose = ConsentPurpose.objects.create(slug="analytics", name="Analytics")
    ConsentText.objects.create(
        purpose=purpose, version=1, text="Yes, measure my visits.", published_at=_ago(9)
    )
    return purpose


def _ago(days):
    return timezone.now() - timedelta(days=days)


def _record(customer, purpose, granted, days_ago, **kwargs):
    kwargs.setdefault("collection_point", "signup form")
    return consent_record(
        subject=customer, purpose=purpose, granted=granted, at=_ago(days_ago), **kwargs
    )


def _state(customer, purpose):
    return ConsentState.objects.get(subject=customer, purpose=purpose)


def test_first_grant_sets_granted_at_only(customer, marketing):
    """A first grant: granted, granted_at its time, no revoked_at."""
    event = _record(customer, marketing, True, 5, ip=IP, user_agent=AGENT)
    state = _state(customer, marketing)
    assert (state.granted, state.granted_at, state.revoked_at) == (True, event.occurred_at, None)
    assert (event.ip_address, event.user_agent, event.collection_point) == (
        IP,
        AGENT,
        "signup form",
    )


def test_first_withdrawal_sets_revoked_at_only(customer, marketing):
    """A refusal first: withdrawn, revoked_at its time, no granted_at."""
    event = _record(customer, "marketing", False, 5)
    state = _state(customer, marketing)
    assert (state.granted, state.granted_at, state.revoked_at) == (False, None, event.occurred_at)


def test_withdrawal_keeps_the_grant(customer, marketing):
    """Withdrawing sets revoked_at and keeps granted_at; the grant event stays."""
    grant = _record(customer, marketing, True, 5)
    withdrawal = _record(customer, marketing, False, 3)
    state = _state(customer, marketing)
    assert not state.granted
    assert (state.granted_at, state.revoked_at) == (grant.occurred_at, withdrawal.occurred_at)
    assert list(ConsentEvent.objects.values_list("pk", "granted")) == [
        (grant.pk, True),
        (withdrawal.pk, False),
    ]


def test_regrant_sets_granted_at_again_and_keeps_the_history(customer, marketing):
    """Re-granting: granted_at moves to the new grant, revoked_at keeps the withdrawal, and
    every event and state version stays."""
    _record(customer, marketing, True, 5)
    withdrawal = _record(customer, marketing, False, 3)
    regrant = _record(customer, marketing, True, 1)
    state = _state(customer, marketing)
    assert state.granted
    assert (state.granted_at, state.revoked_at) == (regrant.occurred_at, withdrawal.occurred_at)
    assert ConsentEvent.objects.filter(subject=customer).count() == 3
    assert [h.granted for h in state.history.order_by("history_id")] == [True, False, True]


def test_repeated_grant_or_withdrawal_moves_no_date(customer, marketing):
    """Granting what is granted keeps granted_at; withdrawing what is withdrawn keeps
    revoked_at (the seed's update_user_consent)."""
    first = _record(customer, marketing, True, 5)
    _record(customer, marketing, True, 4)
    assert _state(customer, marketing).granted_at == first.occurred_at
    withdrawn = _record(customer, marketing, False, 3)
    _record(customer, marketing, False, 2)
    assert _state(customer, marketing).revoked_at == withdrawn.occurred_at


def test_states_are_per_purpose(customer, marketing, analytics):
    """A withdrawal of one purpose leaves the others as they are."""
    _record(customer, marketing, True, 5)
    _record(customer, analytics, True, 5)
    _record(customer, analytics, False, 1)
    assert _state(customer, marketing).granted and not _state(customer, analytics).granted


def test_default_text_is_the_latest_published(customer, marketing):
    """Without a text the latest published version is recorded, not one published later."""
    v2 = ConsentText.objects.create(purpose=marketing, version=2, text="v2", published_at=_ago(2))
    ConsentText.objects.create(purpose=marketing, version=3, text="v3", published_at=_ago(-5))
    assert _record(customer, marketing, True, 1).text == v2
    assert _record(customer, marketing, True, 0).text == v2
    assert _state(customer, marketing).text == v2


def test_refuses_an_unknown_purpose(customer, marketing):
    """An unknown slug is refused with the known ones named; nothing is written."""
    with pytest.raises(ComplianceRefused, match="Unknown consent purpose 'newsletter'.*marketing"):
        _record(customer, "newsletter", True, 1)
    assert not ConsentEvent.objects.exists() and not ConsentState.objects.exists()


def test_refuses_a_grant_to_an_inactive_purpose_but_records_a_withdrawal(customer, marketing):
    """An inactive purpose takes no grant; a withdrawal is always recorded (Art. 7(3))."""
    _record(customer, marketing, True, 5)
    ConsentPurpose.objects.filter(pk=marketing.pk).update(active=False)
    marketing.refresh_from_db()
    with pytest.raises(ComplianceRefused, match="inactive"):
        _record(customer, marketing, True, 2)
    _record(customer, marketing, False, 1)
    assert not _state(customer, marketing).granted


def test_refuses_a_text_of_another_purpose(customer, marketing, analytics):
    """The text must belong to the purpose; the message says which it belongs to."""
    text = analytics.latest_text()
    with pytest.raises(ComplianceRefused, match="belongs to the purpose Analytics"):
        _record(customer, marketing, True, 1, text=text)
    assert not ConsentEvent.objects.exists()


def test_refuses_without_text_collection_point_or_in_the_wrong_order(customer, marketing):
    """No published text, no collection point, or an event older than the latest: refused."""
    empty = ConsentPurpose.objects.create(slug="sharing", name="Sharing")
    with pytest.raises(ComplianceRefused, match="no published text"):
        _record(customer, empty, True, 1)
    with pytest.raises(ComplianceRefused, match="Say where"):
        _record(customer, marketing, True, 1, collection_point="  ")
    _record(customer, marketing, True, 1)
    with pytest.raises(ComplianceRefused, match="in the order they happened"):
        _record(customer, marketing, False, 2)
    assert ConsentEvent.objects.count() == 1


def test_auditor_cannot_record_and_officer_can(customer, marketing, auditor, officer):
    """The service checks the actor: an auditor is refused, an officer is named on the event."""
    with pytest.raises(PermissionDenied):
        _record(customer, marketing, True, 1, actor=auditor)
    assert not ConsentEvent.objects.exists()
    event = _record(customer, marketing, True, 1, actor=officer)
    assert event.actor == officer
    assert _state(customer, marketing).history.get().history_user_id == officer.pk


def test_consents_are_not_ledger_entries(customer, marketing):
    """Grants and withdrawals are the subject's choices, not privileged actions."""
    _record(customer, marketing, True, 2)
    _record(customer, marketing, False, 1)
    assert not LedgerEntry.objects.exists()


def test_events_are_append_only(customer, marketing):
    """Saving, deleting, updating or bulk-deleting an event is refused; it stays as it was."""
    event = _record(customer, marketing, True, 1, ip=IP, user_agent=AGENT)
    event.granted = False
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    events = ConsentEvent.objects.filter(pk=event.pk)
    with pytest.raises(PermissionError, match="granted cannot be updated"):
        events.update(granted=False)
    with pytest.raises(PermissionError, match="may only be anonymised"):
        events.update(ip_address="198.51.100.1")
    with pytest.raises(PermissionError):
        events.delete()
    assert events.values_list("granted", "ip_address").get() == (True, IP)


def test_erasure_can_scrub_ip_and_user_agent_of_events(customer, marketing):
    """The registry's anonymisers, set-based (QuerySet.update and rows_update_with_history),
    clear IP and user agent; the event itself stays."""
    first = _record(customer, marketing, True, 2, ip=IP, user_agent=AGENT)
    second = _record(customer, marketing, False, 1, ip="2001:db8::1", user_agent=AGENT)
    field = ConsentEvent._meta.get_field
    values = {
        "ip_address": get_anonymiser("null").expression(field("ip_address")),
        "user_agent": get_anonymiser("redact").expression(field("user_agent")),
    }
    assert ConsentEvent.objects.filter(pk=first.pk).update(**values) == 1
    assert rows_update_with_history(ConsentEvent.objects.filter(pk=second.pk), values) == 1
    rows = ConsentEvent.objects.order_by("pk").values_list(
        "granted", "ip_address", "user_agent", "text", "collection_point"
    )
    text = marketing.latest_text().pk
    assert list(rows) == [
        (True, None, "[redacted]", text, "signup form"),
        (False, None, "[redacted]", text, "signup form"),
    ]


def test_text_hash_is_of_the_exact_wording(marketing):
    """sha256 of the UTF-8 wording as given: whitespace and every character count."""
    text = marketing.latest_text()
    assert text.sha256 == hashlib.sha256(WORDING.encode("utf-8")).hexdigest()
    other = ConsentText.objects.create(purpose=marketing, version=2, text=WORDING.strip())
    assert other.sha256 != text.sha256
    assert text_sha256("Zoë") == hashlib.sha256("Zoë".encode()).hexdigest()


def test_text_is_editable_until_consented_then_locked(customer, marketing):
    """Before the first consent a text may be corrected (its hash follows); afterwards every
    change, update and delete is refused."""
    text = marketing.latest_text()
    text.text = "Corrected wording."
    text.save()
    assert text.sha256 == text_sha256("Corrected wording.")
    _record(customer, marketing, True, 1)
    text.text = "Changed after the fact."
    with pytest.raises(ConsentTextLocked, match="publish a new version"):
        text.save()
    with pytest.raises(ConsentTextLocked):
        ConsentText.objects.filter(pk=text.pk).update(text="Changed after the fact.")
    with pytest.raises(ConsentTextLocked):
        text.delete()
    text.refresh_from_db()
    assert (text.text, text.sha256) == ("Corrected wording.", text_sha256("Corrected wording."))


def test_timeline_lists_every_event_in_order(customer, marketing, analytics):
    """The subject's events, oldest first, across purposes."""
    a = _record(customer, marketing, True, 5)
    b = _record(customer, analytics, True, 4)
    c = _record(customer, marketing, False, 3)
    assert list(consent_timeline(customer)) == [a, b, c]


def test_gdpr_art_7_1_consent_is_demonstrable_from_the_receipt(customer, marketing):
    """Art. 7(1): the receipt names, for every event, the purpose, granted or withdrawn, when,
    from where (IP, user agent, collection point) and the text version and hash; the exact
    wording it contains hashes to that value."""
    v2 = ConsentText.objects.create(purpose=marketing, version=2, text="v2 wording")
    _record(
        customer, marketing, True, 5, ip=IP, user_agent=AGENT, text=marketing.texts.get(version=1)
    )
    _record(
        customer, marketing, False, 0, ip=IP, user_agent=AGENT, collection_point="preference centre"
    )
    receipt = consent_receipt(customer)
    assert receipt["subject"] == {"model": "shop.Customer", "pk": str(customer.pk)}
    events = receipt["events"]
    assert [(e["action"], e["text_version"], e["collection_point"]) for e in events] == [
        ("granted", 1, "signup form"),
        ("withdrawn", 2, "preference centre"),
    ]
    assert all(e["ip_address"] == IP and e["user_agent"] == AGENT for e in events)
    assert events[1]["text_sha256"] == v2.sha256
    texts = {t["sha256"]: t["text"] for t in receipt["texts"]}
    for event in events:
        assert text_sha256(texts[event["text_sha256"]]) == event["text_sha256"]
    assert receipt["states"] == [
        {
            "purpose": "marketing",
            "granted": False,
            "granted_at": events[0]["occurred_at"],
            "revoked_at": events[1]["occurred_at"],
            "text_version": 2,
        }
    ]


def test_registry_checks_pass(db):
    """manage.py check finds the consent declarations valid and every field classified: no
    compliance error at all, the consent models are declared with their personal fields,
    and the same check reports the consent event's IP and user agent once undeclared."""
    from compliance.checks import registry_check
    from compliance.registry import registry

    assert [e for e in registry_check(None) if e.id.startswith("compliance.")] == []
    call_command("check", fail_level="ERROR")  # raises SystemCheckError on any error
    entry = registry.get(ConsentEvent)
    assert set(entry.fields) == {"ip_address", "user_agent"}
    assert registry.is_registered(ConsentState)
    registry.unregister(ConsentEvent)
    try:
        undeclared = {
            e.msg.split(" ")[0] for e in registry_check(None) if e.id == "compliance.E001"
        }
    finally:
        registry.register(ConsentEvent, type(entry))
    assert undeclared == {
        "compliance.ConsentEvent.ip_address",
        "compliance.ConsentEvent.user_agent",
    }


def test_concurrent_grants_and_withdrawals_apply_in_turn(postgres, transactional_db, customer):
    """Parallel connections recording for one new subject and purpose (PostgreSQL): no error,
    every event kept, and the state is what replaying the events in order gives."""
    purpose = ConsentPurpose.objects.create(slug="marketing", name="Marketing emails")
    ConsentText.objects.create(purpose=purpose, version=1, text=WORDING, published_at=_ago(1))
    start, errors = threading.Barrier(4), []

    def worker(n):
        try:
            start.wait()
            for i in range(10):
                consent_record(
                    subject=customer,
                    purpose="marketing",
                    granted=(n + i) % 2 == 0,
                    collection_point="preference centre",
                )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    granted, granted_at, revoked_at = None, None, None
    for event in ConsentEvent.objects.order_by("occurred_at", "id"):
        if event.granted and not granted:
            granted_at = event.occurred_at
        if not event.granted and (granted or granted is None):
            revoked_at = event.occurred_at
        granted = event.granted
    state = _state(customer, purpose)
    assert ConsentEvent.objects.count() == 40 and state.history.count() == 40
    assert (state.granted, state.granted_at, state.revoked_at) == (granted, granted_at, revoked_at)


def test_registry_walk_finds_a_subjects_consents(customer, marketing):
    """The subject walk (export, erasure, overview) reaches the events and the state, and the
    inventory shows how each is erased."""
    from compliance.selectors import inventory, subject_walk

    _record(customer, marketing, True, 2, ip=IP, user_agent=AGENT)
    _record(customer, marketing, False, 1)
    walked = {rows.entry.label: rows for rows in subject_walk(customer)}
    assert walked["compliance.ConsentEvent"].rows.count() == 2
    assert walked["compliance.ConsentEvent"].history is None  # the row is its own record
    assert walked["compliance.ConsentState"].rows.count() == 1
    assert walked["compliance.ConsentState"].history.count() == 2
    rows = {row.label: row for row in inventory()}
    event = rows["compliance.ConsentEvent"]
    assert event.erasure == "Anonymise the personal fields" and "Art. 7(1)" in event.legal_ground
    assert [(f.name, f.anonymiser) for f in event.fields] == [
        ("ip_address", "Set to NULL"),
        ("user_agent", "Replaced by [redacted]"),
    ]
    assert rows["compliance.ConsentState"].erasure == "Retain for a legal reason"


def test_seed_demo_adds_purposes_texts_and_consents(db, settings):
    """Three purposes (marketing in two versions), grants and withdrawals for the demo
    customers, and one customer's marketing consent withdrawn and granted again."""
    settings.DEMO = True
    from io import StringIO

    call_command("seed_demo", customers=12, no_logins=True, stdout=StringIO())
    assert set(ConsentPurpose.objects.values_list("slug", flat=True)) == {
        "marketing",
        "analytics",
        "third-party-sharing",
    }
    assert list(
        ConsentText.objects.filter(purpose__slug="marketing").values_list("version", flat=True)
    ) == [2, 1]
    assert ConsentState.objects.filter(granted=True).exists()
    assert ConsentState.objects.filter(granted=False).exists()
    regranted = ConsentState.objects.filter(
        purpose__slug="marketing", granted=True, revoked_at__isnull=False
    ).get()
    assert regranted.granted_at > regranted.revoked_at
    events = ConsentEvent.objects.filter(subject=regranted.subject, purpose__slug="marketing")
    assert list(events.values_list("granted", flat=True)) == [True, False, True]


# --- consent evidence outlives its subject's row -----------------------------------------


@pytest.fixture
def newsletter(db):
    """A purpose whose text was published long ago, for events years old."""
    purpose = ConsentPurpose.objects.create(slug="newsletter", name="Newsletter")
    ConsentText.objects.create(purpose=purpose, version=1, text="Yes", published_at=_ago(2000))
    return purpose


def test_a_purge_of_deleted_customers_takes_those_with_consent_history(customer, newsletter):
    """A deleted customer with consent events is purged like any other (not excluded for
    ever); the events stay, reachable by the customer's key."""
    from retention.models import PolicyAction
    from retention.services import policy_purge
    from shop.models import Customer
    from tests.retention.test_purge import _policy

    _record(customer, newsletter, True, 500)
    _record(customer, newsletter, False, 400)
    customer.delete()
    Customer.all_objects.filter(pk=customer.pk).update(deleted_at=_ago(100))
    policy = _policy(Customer, "deleted customers", basis_field="deleted_at", period_days=30)
    assert policy.action == PolicyAction.HARD_DELETE

    run = policy_purge(policy=policy, actor=None)

    assert (run.status, run.eligible, run.excluded) == ("succeeded", 1, 0)
    assert not Customer.all_objects.filter(pk=customer.pk).exists()
    assert not ConsentState.objects.exists()  # the current choice goes with its subject
    assert ConsentEvent.objects.filter(subject_id=customer.pk).count() == 2


def test_consent_evidence_has_a_retention_of_its_own_once_its_subject_is_gone(customer, newsletter):
    """A policy on consent events removes the expired events of subjects whose row is gone
    and keeps those of subjects still there, counted as excluded."""
    from retention.services import policy_purge, rows_hard_delete
    from shop.models import Customer
    from tests.retention.test_purge import _policy

    gone = Customer.objects.create(email="gone@example.org", full_name="Gone")
    for subject in (customer, gone):
        _record(subject, newsletter, True, 1500)
        _record(subject, newsletter, False, 10)  # recent: kept by the period
    rows_hard_delete(queryset=Customer.objects.filter(pk=gone.pk), actor=None, reason="")
    policy = _policy(ConsentEvent, "consent evidence", basis_field="occurred_at", period_days=1095)

    run = policy_purge(policy=policy, actor=None)

    assert (run.purged, run.excluded) == (1, 1)
    assert ConsentEvent.objects.filter(subject_id=gone.pk).count() == 1
    assert ConsentEvent.objects.filter(subject_id=customer.pk).count() == 2


def test_the_overview_of_a_gone_subject_counts_their_requests_and_consents(customer, newsletter):
    """Once the subject row is gone, their requests (subject NULL, subject_key set) and
    their consent events still count on their overview."""
    from compliance.models import SubjectRequest
    from compliance.selectors import subject_get, subject_gone, subject_overview
    from compliance.services import request_create
    from retention.services import rows_hard_delete
    from shop.models import Customer

    request_create(subject=customer, kind="erasure", jurisdiction="gdpr", actor=None)
    _record(customer, newsletter, True, 5)
    rows_hard_delete(queryset=Customer.objects.filter(pk=customer.pk), actor=None, reason="")
    assert SubjectRequest.objects.get().subject_id is None

    subject = subject_get(customer.pk)
    counts = {model.entry.label: model.total for model in subject_overview(subject).models}

    assert subject_gone(subject)
    assert counts["compliance.SubjectRequest"] == 1
    assert counts["compliance.ConsentEvent"] == 1
