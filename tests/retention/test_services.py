"""Retention services: permission checks, refusals that change nothing, the ledger."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from retention.services import RetentionRefused, rows_hard_delete, rows_restore, rows_soft_delete
from shop.models import Customer, Document, Order
from versions.models import LedgerEntry


def _all(model, pk):
    return model.all_objects.filter(pk=pk)


def test_soft_delete_needs_the_delete_permission(db, customer):
    """A staff user without delete_customer is refused and nothing is hidden."""
    clerk = get_user_model().objects.create_user("clerk", is_staff=True)
    with pytest.raises(PermissionDenied):
        rows_soft_delete(queryset=_all(Customer, customer.pk), actor=clerk, reason="")
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_restore_is_refused_when_the_email_was_taken_since(db, customer):
    """A new customer took the email: the restore says so and changes nothing."""
    rows_soft_delete(queryset=_all(Customer, customer.pk), actor=None, reason="left")
    Customer.objects.create(email=customer.email, full_name="Newcomer")
    with pytest.raises(RetentionRefused, match="already has the same email"):
        rows_restore(queryset=_all(Customer, customer.pk), actor=None, reason="mistake")
    assert Customer.deleted_objects.filter(pk=customer.pk).exists()


def test_restoring_a_document_of_a_deleted_customer_is_refused(db, customer):
    """The document came down with its owner: restore the owner instead."""
    doc = Document.objects.create(owner=customer, title="Invoice", content="x")
    customer.delete()
    with pytest.raises(RetentionRefused, match="restore the customer instead"):
        rows_restore(queryset=_all(Document, doc.pk), actor=None, reason="")
    assert Document.deleted_objects.filter(pk=doc.pk).exists()


def test_hard_delete_needs_its_own_permission(db, customer):
    """delete_customer (soft) is not enough to delete for good."""
    clerk = get_user_model().objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.add(
        *clerk.user_permissions.model.objects.filter(codename="delete_customer")
    )
    clerk = get_user_model().objects.get(pk=clerk.pk)
    rows_soft_delete(queryset=_all(Customer, customer.pk), actor=clerk, reason="")
    with pytest.raises(PermissionDenied):
        rows_hard_delete(queryset=_all(Customer, customer.pk), actor=clerk, reason="")
    assert Customer.all_objects.filter(pk=customer.pk).exists()


def test_hard_delete_writes_a_ledger_entry_without_personal_data(db, customer):
    """The entry names the model and counts, never the email or name."""
    Document.objects.create(owner=customer, title="Invoice", content="x")
    rows_hard_delete(queryset=_all(Customer, customer.pk), actor=None, reason="request 12")
    entry = LedgerEntry.objects.get()
    assert (entry.action, entry.target, entry.reason) == (
        "hard_delete",
        "shop.Customer",
        "request 12",
    )
    assert entry.counts == {"shop.Customer": 1, "shop.Document": 1}
    assert customer.email not in str(entry.details) + str(entry.counts)


def test_hard_delete_of_a_customer_with_orders_is_refused_clearly(db, customer):
    """Orders protect their customer: a message, no traceback, nothing deleted, no entry."""
    Order.objects.create(
        customer=customer,
        number="A-1",
        total=Decimal("9.99"),
        shipping_name="Ada",
        shipping_address="1 Road",
        shipping_postcode="N1",
        shipping_city="London",
        shipping_country="GB",
        created_at=timezone.now(),
    )
    with pytest.raises(RetentionRefused, match="orders still refer to them"):
        rows_hard_delete(queryset=_all(Customer, customer.pk), actor=None, reason="")
    assert Customer.all_objects.filter(pk=customer.pk).exists()
    assert not LedgerEntry.objects.exists()


def test_a_hold_on_a_document_refuses_the_hard_delete_of_its_owner(db, customer):
    """The cascade would take the held document: refused, nothing deleted."""
    from retention.services import hold_place

    document = Document.objects.create(owner=customer, title="Contract", content="evidence")
    hold_place(record=document, reason="litigation", ground="art17_3_e", actor=None)
    with pytest.raises(RetentionRefused, match="under a legal hold"):
        rows_hard_delete(queryset=_all(Customer, customer.pk), actor=None, reason="")
    assert Document.all_objects.filter(pk=document.pk).exists()


def test_restoring_two_customers_with_one_email_is_refused_clearly(db):
    """Both deleted with the same email: restoring both at once is refused, not a 500."""
    first = Customer.objects.create(email="twice@example.org", full_name="One")
    first.delete()
    second = Customer.objects.create(email="twice@example.org", full_name="Two")
    second.delete()
    both = Customer.all_objects.filter(pk__in=[first.pk, second.pk])
    with pytest.raises(RetentionRefused, match="would share a value that must be unique"):
        rows_restore(queryset=both, actor=None, reason="")
    assert Customer.deleted_objects.count() == 2


def test_a_hold_committed_while_a_hard_delete_checks_is_not_missed(postgres, transactional_db):
    """Race on two connections: a hold is placed (not yet committed) as a hard delete of the
    same customer starts. The delete waits for the hold's commit, sees it and is refused;
    it never deletes held rows."""
    import threading

    from django.db import connection, transaction

    from retention.models import LegalHold
    from retention.services import hold_place

    held = Customer.objects.create(email="race@example.org", full_name="Race")
    placed, deleted, outcome = threading.Event(), threading.Event(), []

    def holder():
        try:
            with transaction.atomic():
                hold_place(record=held, reason="claim filed", ground="art17_3_e", actor=None)
                placed.set()
                deleted.wait(timeout=1.5)  # the delete's check runs now (or waits for us)
        finally:
            placed.set()
            connection.close()

    def deleter():
        try:
            placed.wait(timeout=10)
            rows_hard_delete(queryset=_all(Customer, held.pk), actor=None, reason="tidy")
            outcome.append("deleted")
        except RetentionRefused as exc:
            outcome.append(str(exc))
        finally:
            deleted.set()
            connection.close()

    threads = [threading.Thread(target=holder), threading.Thread(target=deleter)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert LegalHold.objects.filter(object_id=str(held.pk)).exists()
    assert outcome and "legal hold" in outcome[0]
    assert Customer.all_objects.filter(pk=held.pk).exists()


# --- Four eyes on destroying history --------------------------------------------------


@pytest.fixture
def second_officer(db):
    """Another member of the privacy officers."""
    from django.contrib.auth.models import Group

    from compliance.roles import OFFICER

    user = get_user_model().objects.create_user("second", password="second-pass", is_staff=True)
    user.groups.add(Group.objects.get(name=OFFICER))
    return user


def _history_policy(officer, *, action="hard_delete", period_days=1):
    from django.contrib.contenttypes.models import ContentType

    from retention.models import RetentionPolicy
    from retention.services import policy_save
    from shop.models import Session

    return policy_save(
        policy=RetentionPolicy(
            name="session history",
            target=ContentType.objects.get_for_model(Session.history.model),
            period_days=period_days,
            action=action,
        ),
        actor=officer,
        reason="tidy up",
    )


def _old_session_history(customer):
    from datetime import timedelta

    from shop.models import Session

    when = timezone.now() - timedelta(days=200)
    Session.objects.create(customer=customer, created_at=when, expires_at=when)
    Session.history.update(history_date=when)
    return Session.history.count()


@pytest.mark.parametrize("action", ["hard_delete", "anonymise"])
def test_a_policy_destroying_history_waits_for_a_second_officer(
    customer, officer, second_officer, action
):
    """Created by one officer, a policy that deletes or anonymises a history table is
    pending: disabled, left out by the purge command and by beat, refused by a purge."""
    from io import StringIO

    from django.core.management import call_command

    from retention.services import PolicyPending, policy_purge
    from retention.tasks import purge_scheduled
    from shop.models import Session

    before = _old_session_history(customer)
    policy = _history_policy(officer, action=action)
    assert policy.is_pending and not policy.enabled
    assert policy.pending_change["enabled"] is True and policy.proposed_by == officer
    entry = LedgerEntry.objects.get(action="policy_change")
    assert entry.details["pending_approval"] == ["it deletes or anonymises a history table"]

    call_command("purge_expired", stdout=StringIO())
    out = StringIO()
    call_command("purge_expired", "--policy", policy.name, stdout=out)
    message = f"Policy {policy.name!r} is skipped: it is not in effect until a second"
    assert message in out.getvalue()
    assert policy.pk not in purge_scheduled()
    with pytest.raises(PolicyPending):
        policy_purge(policy=policy, actor=second_officer)
    assert Session.history.count() == before
    assert set(Session.history.values_list("user_agent", flat=True)) != {"[redacted]"}


def _approved_history_policy(officer, second_officer, **values):
    from retention.services import policy_approve, policy_fingerprint, policy_save

    policy = _history_policy(officer, period_days=100)
    policy = policy_approve(
        policy=policy, expected=policy_fingerprint(policy), actor=second_officer
    )
    for name, value in values.items():
        setattr(policy, name, value)
    return policy_save(policy=policy, actor=officer, reason="") if values else policy


@pytest.mark.parametrize(
    "before, after",
    [
        ({}, {"basis_field": "history_date"}),
        ({"exclusions": [{"field": "ip_address", "lookup": "isnull", "value": False}]}, {}),
        (
            {"exclusions": [{"field": "ip_address", "lookup": "isnull", "value": False}]},
            {"exclusions": [{"field": "ip_address", "lookup": "isnull", "value": True}]},
        ),
    ],
    ids=["basis moved", "exclusion removed", "exclusion changed"],
)
def test_moving_the_basis_or_dropping_an_exclusion_of_a_history_purge_waits(
    db, officer, second_officer, before, after
):
    """On a policy deleting a history table, a new basis field, a removed or a changed
    exclusion purges history sooner: it waits for a second officer like a shorter period."""
    from retention.services import policy_save

    policy = _approved_history_policy(officer, second_officer, **before)
    assert not policy.is_pending
    old = {"basis_field": policy.basis_field, "exclusions": policy.exclusions}
    for name, value in {"exclusions": [], **after}.items():
        setattr(policy, name, value)
    policy_save(policy=policy, actor=officer, reason="")
    policy.refresh_from_db()
    assert policy.is_pending
    assert {"basis_field": policy.basis_field, "exclusions": policy.exclusions} == old
    entry = LedgerEntry.objects.filter(action="policy_change").latest("pk")
    assert entry.details["pending_approval"] == ["it purges history rows it kept before"]


def test_adding_an_exclusion_to_a_history_purge_takes_effect_at_once(db, officer, second_officer):
    """An added exclusion keeps more history: no approval needed."""
    from retention.services import policy_save

    policy = _approved_history_policy(officer, second_officer)
    policy.exclusions = [{"field": "ip_address", "lookup": "isnull", "value": False}]
    policy_save(policy=policy, actor=officer, reason="")
    policy.refresh_from_db()
    assert not policy.is_pending and policy.exclusions[0]["field"] == "ip_address"


def test_a_pending_change_does_not_halt_the_approved_policy(customer, officer, second_officer):
    """A change nobody approves halts nothing: the command, beat and Run now purge with the
    approved values (100 days), not the proposed ones (1 day)."""
    from datetime import timedelta
    from io import StringIO

    from django.core.management import call_command

    from retention.services import policy_purge
    from retention.tasks import purge_scheduled
    from shop.models import Session

    _old_session_history(customer)  # 200 days old
    recent = timezone.now() - timedelta(days=50)
    Session.objects.create(customer=customer, created_at=recent, expires_at=recent)
    Session.history.filter(history_date__gt=recent).update(history_date=recent)
    policy = _approved_history_policy(officer, second_officer, period_days=1)
    assert policy.is_pending and policy.period_days == 100 and policy.enabled

    out = StringIO()
    call_command("purge_expired", "--policy", policy.name, "--dry-run", stdout=out)
    assert "skipped" not in out.getvalue()
    assert policy_purge(policy=policy, actor=second_officer, dry_run=True).eligible == 1
    assert policy.pk in purge_scheduled()  # the tests run tasks eagerly: this purges
    assert list(Session.history.values_list("history_date", flat=True)) == [recent]
    assert list(policy.runs.exclude(status="dry_run").values_list("status", "purged")) == [
        ("succeeded", 1)
    ]


def test_doctor_reports_a_change_pending_too_long(db, officer, second_officer):
    """A change pending longer than POLICY_PENDING_DAYS asks for action; a younger one
    does not."""
    from datetime import timedelta

    from operations.doctor import ACTION, Thresholds, doctor_run
    from retention.models import RetentionPolicy

    policy = _approved_history_policy(officer, second_officer, period_days=1)

    def findings():
        found = doctor_run(
            thresholds=Thresholds.from_settings(policy_pending_days=7), names=["purge-backlog"]
        )
        return [f for f in found if "awaits approval" in f.summary]

    assert findings() == []
    RetentionPolicy.objects.filter(pk=policy.pk).update(
        proposed_at=timezone.now() - timedelta(days=8)
    )
    [finding] = findings()
    assert finding.status == ACTION
    assert 'Policy "session history": a change proposed by officer 8 d ago' in finding.summary


def test_the_approval_is_a_ledger_entry_and_gives_the_change_effect(
    customer, officer, second_officer
):
    """A second officer approves: the policy is enabled, the ledger names both officers,
    and the next purge deletes the old history rows."""
    from retention.services import policy_approve, policy_fingerprint, policy_purge
    from shop.models import Session

    _old_session_history(customer)
    policy = _history_policy(officer)
    approved = policy_approve(
        policy=policy,
        expected=policy_fingerprint(policy),
        actor=second_officer,
        reason="agreed, ticket 9",
    )
    assert approved.enabled and not approved.is_pending and approved.proposed_by is None
    entry = LedgerEntry.objects.get(action="policy_approve")
    assert (entry.actor, entry.reason) == (second_officer, "agreed, ticket 9")
    assert entry.details["proposed_by"] == "officer" and entry.details["period_days"] == 1
    assert policy_purge(policy=approved, actor=second_officer).purged >= 1
    assert not Session.history.exists()


def test_the_proposer_and_an_auditor_cannot_approve(db, officer, auditor):
    """Four eyes: the officer who proposed the change is refused, an auditor lacks the
    permission; the policy stays pending."""
    from retention.services import policy_approve, policy_fingerprint

    policy = _history_policy(officer)
    with pytest.raises(RetentionRefused, match="another officer approves it"):
        policy_approve(policy=policy, expected=policy_fingerprint(policy), actor=officer)
    with pytest.raises(PermissionDenied):
        policy_approve(policy=policy, expected=policy_fingerprint(policy), actor=auditor)
    policy.refresh_from_db()
    assert policy.is_pending and not policy.enabled


def test_shortening_a_period_waits_and_the_policy_keeps_its_period(db, officer, second_officer):
    """365 days shortened to 1: the policy keeps 365 days until approved, then has 1."""
    from django.contrib.contenttypes.models import ContentType

    from retention.models import RetentionPolicy
    from retention.services import policy_approve, policy_fingerprint, policy_save
    from shop.models import Session

    policy = policy_save(
        policy=RetentionPolicy(
            name="sessions", target=ContentType.objects.get_for_model(Session), period_days=365
        ),
        actor=officer,
        reason="",
    )
    assert not policy.is_pending
    policy.period_days = 1
    policy_save(policy=policy, actor=officer, reason="shorter")
    policy.refresh_from_db()
    assert policy.period_days == 365 and policy.pending_change["period_days"] == 1
    policy_approve(policy=policy, expected=policy_fingerprint(policy), actor=second_officer)
    policy.refresh_from_db()
    assert policy.period_days == 1 and not policy.is_pending


@pytest.mark.parametrize(
    "change", [{"period_days": 400}, {"enabled": False}, {"period_days": None}]
)
def test_lengthening_or_disabling_takes_effect_at_once(db, officer, second_officer, change):
    """Keeping data longer, or stopping a policy, destroys nothing: no approval needed."""
    from retention.services import policy_approve, policy_fingerprint, policy_save

    policy = _history_policy(officer, period_days=30)
    policy = policy_approve(
        policy=policy, actor=second_officer, expected=policy_fingerprint(policy)
    )
    for name, value in change.items():
        setattr(policy, name, value)
    policy_save(policy=policy, actor=officer, reason="")
    policy.refresh_from_db()
    assert not policy.is_pending
    assert all(getattr(policy, name) == value for name, value in change.items())


def test_an_approval_naming_another_fingerprint_approves_nothing(db, officer, second_officer):
    """The proposal changed after the approver saw it: refused, still pending, no ledger
    entry; the fingerprint of the change as it is now approves it."""
    from retention.services import RetentionRefused, policy_approve, policy_fingerprint

    policy = _history_policy(officer, period_days=30)
    seen = policy_fingerprint(policy)
    policy.period_days, policy.enabled = 1, True
    policy = policy_save_as(officer, policy)
    assert policy_fingerprint(policy) != seen
    with pytest.raises(RetentionRefused, match="not the one you were shown"):
        policy_approve(policy=policy, actor=second_officer, expected=seen)
    with pytest.raises(RetentionRefused, match="not the one you were shown"):
        policy_approve(policy=policy, actor=second_officer, expected="")
    policy.refresh_from_db()
    assert policy.is_pending and not LedgerEntry.objects.filter(action="policy_approve").exists()
    approved = policy_approve(
        policy=policy, actor=second_officer, expected=policy_fingerprint(policy)
    )
    assert approved.period_days == 1 and approved.enabled


def policy_save_as(officer, policy):
    from retention.services import policy_save

    policy_save(policy=policy, actor=officer, reason="")
    policy.refresh_from_db()
    return policy


def test_renaming_a_policy_keeps_its_pending_change(db, officer, second_officer):
    """A save of fields needing no approval takes effect and leaves the pending change
    pending, from its proposer; approved, the change keeps the new name."""
    from retention.services import policy_approve, policy_fingerprint

    policy = _approved_history_policy(officer, second_officer)
    policy.period_days = 1
    policy = policy_save_as(officer, policy)
    assert policy.is_pending and policy.period_days == 100
    policy.name = "session history, renamed"
    policy = policy_save_as(second_officer, policy)
    assert policy.name == "session history, renamed" and policy.period_days == 100
    assert policy.is_pending and policy.proposed_by == officer
    assert policy.pending_change["period_days"] == 1
    assert policy.pending_change["name"] == "session history, renamed"
    policy = policy_approve(
        policy=policy, actor=second_officer, expected=policy_fingerprint(policy)
    )
    assert (policy.name, policy.period_days) == ("session history, renamed", 1)


def test_a_new_policy_renamed_before_approval_stays_pending(db, officer, second_officer):
    """A new policy destroying history, renamed while it waits, still waits (disabled)."""
    policy = _history_policy(officer)
    policy.name = "renamed"
    policy = policy_save_as(officer, policy)
    assert policy.is_pending and not policy.enabled and policy.pending_change["enabled"]


def test_retention_imports_only_the_ground_layer_of_compliance():
    """Retention sits below consents, requests and erasure: anywhere in its code, at module
    level or inside a function, it imports only compliance's registry, anonymisers and
    config (the ground layer)."""
    import ast
    from pathlib import Path

    import retention

    ground = {"compliance.registry", "compliance.anonymisers", "compliance.config"}
    found = []
    for path in Path(retention.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [
                f"{path.name}:{node.lineno} {name}"
                for name in names
                if name.split(".")[0] == "compliance" and name not in ground
            ]
    assert found == []
