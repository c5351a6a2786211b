"""Policies, holds and the run log in the admin."""

import re
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from retention.models import LegalHold, PurgeRun, RetentionPolicy
from shop.models import Session
from versions.models import LedgerEntry

POLICIES = "/admin/retention/retentionpolicy/"


@pytest.fixture
def session_type(db):
    return ContentType.objects.get_for_model(Session)


@pytest.fixture
def old_sessions(customer):
    when = timezone.now() - timedelta(days=200)
    return [
        Session.objects.create(customer=customer, created_at=when, expires_at=when)
        for _ in range(3)
    ]


def _form(session_type, **overrides):
    return {
        "name": "sessions",
        "target": session_type.pk,
        "basis_field": "created_at",
        "period_days": "90",
        "action": "hard_delete",
        "exclusions": "[]",
        "enabled": "on",
        **overrides,
    }


def test_policy_form_refuses_a_basis_that_is_not_a_date(admin_client, session_type):
    """The form names the problem and no policy is created."""
    response = admin_client.post(f"{POLICIES}add/", _form(session_type, basis_field="user_agent"))
    assert response.status_code == 200
    assert "has no date or datetime field &#x27;user_agent&#x27;" in response.content.decode()
    assert not RetentionPolicy.objects.exists()


def test_policy_form_refuses_unknown_exclusion_fields(admin_client, session_type):
    """Exclusions are checked against the model's fields, never run as SQL."""
    bad = '[{"field": "1=1; DROP TABLE x", "lookup": "exact", "value": 1}]'
    response = admin_client.post(f"{POLICIES}add/", _form(session_type, exclusions=bad))
    assert "has no field" in response.content.decode()
    assert not RetentionPolicy.objects.exists()


def test_saving_a_policy_is_a_ledger_entry_and_a_history_row(admin_client, session_type):
    """Created through the form: tracked in history and recorded in the ledger."""
    response = admin_client.post(f"{POLICIES}add/", _form(session_type))
    assert response.status_code == 302
    policy = RetentionPolicy.objects.get()
    entry = LedgerEntry.objects.get(action="policy_change")
    assert entry.details["period_days"] == 90 and entry.target == "policy:sessions"
    assert policy.history.count() == 1


def test_preview_shows_the_dry_run_and_changes_nothing(admin_client, session_type, old_sessions):
    """The preview page lists what would go; every session is still there."""
    policy = RetentionPolicy.objects.create(name="s", target=session_type, period_days=90)
    response = admin_client.post(
        POLICIES, {"action": "preview_purge", "_selected_action": [policy.pk]}
    )
    page = response.content.decode()
    assert "Purge preview" in page and "<td>3</td>" in page
    assert Session.objects.count() == 3


def test_run_now_enqueues_the_purge_and_says_so(
    admin_client, session_type, old_sessions, django_capture_on_commit_callbacks
):
    """Run now queues the task after commit (in-process here); the run log shows its result."""
    policy = RetentionPolicy.objects.create(name="s", target=session_type, period_days=90)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            POLICIES, {"action": "run_now", "_selected_action": [policy.pk]}, follow=True
        )
    assert "Queued 1 purge(s)" in response.content.decode()
    run = PurgeRun.objects.get()
    assert (run.status, run.purged) == ("succeeded", 3)
    log = admin_client.get("/admin/retention/purgerun/").content.decode()
    assert "Succeeded" in log


def test_placing_a_hold_in_the_admin_names_a_real_record(admin_client, customer):
    """An unknown id is refused on the form; a real one is held and recorded."""
    customer_type = ContentType.objects.get_for_model(customer)
    form = {"content_type": customer_type.pk, "ground": "art17_3_e", "reason": "claim"}
    refused = admin_client.post("/admin/retention/legalhold/add/", {**form, "object_id": "999"})
    assert "There is no customer with id 999." in refused.content.decode()
    admin_client.post("/admin/retention/legalhold/add/", {**form, "object_id": str(customer.pk)})
    hold = LegalHold.objects.get()
    assert (hold.object_id, hold.reason) == (str(customer.pk), "claim")
    assert LedgerEntry.objects.filter(action="hold_place").count() == 1


def test_releasing_a_hold_needs_a_reason(admin_client, customer):
    """Release asks for a reason, then releases and records it."""
    from retention.services import hold_place

    hold = hold_place(record=customer, reason="claim", ground="art17_3_e", actor=None)
    url = "/admin/retention/legalhold/"
    asked = admin_client.post(
        url, {"action": "release_selected", "_selected_action": [hold.pk], "post": "yes"}
    )
    assert "Give a reason" in asked.content.decode()
    admin_client.post(
        url,
        {
            "action": "release_selected",
            "_selected_action": [hold.pk],
            "post": "yes",
            "reason": "claim settled",
        },
    )
    hold.refresh_from_db()
    assert hold.release_reason == "claim settled" and not hold.is_active


def test_run_log_and_holds_cannot_be_edited(admin_client, customer, session_type):
    """Posting a changed run or hold, or the confirmation of their deletion, is refused and
    changes nothing (even for a superuser)."""
    from retention.services import hold_place, policy_purge

    policy = RetentionPolicy.objects.create(name="s", target=session_type, period_days=90)
    run = policy_purge(policy=policy, actor=None)
    hold = hold_place(record=customer, reason="claim", ground="art17_3_e", actor=None)
    run_url = f"/admin/retention/purgerun/{run.pk}/"
    hold_url = f"/admin/retention/legalhold/{hold.pk}/"
    edits = [
        (run_url, {"status": "failed", "purged": "999", "error": "forged", "_save": "Save"}),
        (hold_url, {"reason": "forged", "object_id": "0", "ground": "art17_3_a", "_save": "Save"}),
    ]
    for url, data in edits:
        assert admin_client.post(f"{url}change/", data).status_code == 403
        assert admin_client.post(f"{url}delete/", {"post": "yes"}).status_code == 403
    run_after, hold_after = PurgeRun.objects.get(pk=run.pk), LegalHold.objects.get(pk=hold.pk)
    assert (run_after.status, run_after.purged, run_after.error) == (run.status, 0, "")
    assert (hold_after.reason, hold_after.ground, hold_after.is_active) == (
        "claim",
        "art17_3_e",
        True,
    )


# --- Four eyes on destroying history --------------------------------------------------


@pytest.fixture
def history_type(db):
    return ContentType.objects.get_for_model(Session.history.model)


@pytest.fixture
def second_officer_client(db):
    """A client logged in as a second privacy officer."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from compliance.roles import OFFICER

    user = get_user_model().objects.create_user("second", password="second-pass", is_staff=True)
    user.groups.add(Group.objects.get(name=OFFICER))
    client = Client()
    client.force_login(user)
    return client


def _propose(officer_client, history_type):
    form = _form(history_type, name="session history", basis_field="", period_days="1")
    response = officer_client.post(f"{POLICIES}add/", form, follow=True)
    assert "it awaits approval by another officer" in response.content.decode()
    return RetentionPolicy.objects.get(name="session history")


def test_a_policy_destroying_history_shows_as_pending(officer_client, history_type):
    """After the form is saved, the list and the change page say the policy awaits approval
    and that purges skip it."""
    policy = _propose(officer_client, history_type)
    assert policy.is_pending
    listing = officer_client.get(POLICIES).content.decode()
    assert "Awaits approval" in listing and "proposed by officer" not in listing
    page = officer_client.get(f"{POLICIES}{policy.pk}/change/").content.decode()
    assert "Awaits approval" in page and "proposed by officer" in page
    assert "purges skip this policy" in page
    pending = officer_client.get(f"{POLICIES}?approval=pending").content.decode()
    assert "session history" in pending


def test_a_second_officer_approves_after_a_confirmation_page(
    officer_client, second_officer_client, history_type
):
    """The action shows a confirmation page; confirmed, the change is in effect, with a
    message, and the approval is a ledger entry."""
    policy = _propose(officer_client, history_type)
    selected = {"action": "approve_selected", "_selected_action": [policy.pk]}
    page = second_officer_client.post(POLICIES, selected)
    assert page.status_code == 200 and "Approve: are you sure?" in page.content.decode()
    assert RetentionPolicy.objects.get(pk=policy.pk).is_pending
    shown = re.search(rf'name="fingerprint_{policy.pk}" value="(\w+)"', page.content.decode())
    confirm = {**selected, "post": "yes", "reason": "agreed"}
    confirm[f"fingerprint_{policy.pk}"] = shown.group(1)
    done = second_officer_client.post(POLICIES, confirm, follow=True)
    assert "Approved the pending change of session history" in done.content.decode()
    policy.refresh_from_db()
    assert policy.enabled and not policy.is_pending
    assert LedgerEntry.objects.get(action="policy_approve").actor_label == "second"


def test_the_proposer_is_refused_in_the_admin(officer_client, history_type):
    """The officer who proposed the change cannot confirm it: an error message, still pending."""
    policy = _propose(officer_client, history_type)
    response = officer_client.post(
        POLICIES,
        {"action": "approve_selected", "_selected_action": [policy.pk], "post": "yes"},
        follow=True,
    )
    assert "another officer approves it" in response.content.decode()
    assert RetentionPolicy.objects.get(pk=policy.pk).is_pending
    assert not LedgerEntry.objects.filter(action="policy_approve").exists()


def test_an_auditor_sees_a_pending_policy_but_cannot_approve(officer_client, auditor, history_type):
    """The auditor's list shows the pending state and offers no approval; a forged POST of
    the action approves nothing."""
    from django.test import Client

    policy = _propose(officer_client, history_type)
    client = Client()
    client.force_login(auditor)
    listing = client.get(POLICIES).content.decode()
    assert "Awaits approval" in listing and "approve_selected" not in listing
    client.post(
        POLICIES, {"action": "approve_selected", "_selected_action": [policy.pk], "post": "yes"}
    )
    assert RetentionPolicy.objects.get(pk=policy.pk).is_pending
    assert not LedgerEntry.objects.filter(action="policy_approve").exists()


def test_run_now_skips_a_new_policy_awaiting_approval(
    officer_client, history_type, django_capture_on_commit_callbacks
):
    """Run now queues nothing for a new policy that awaits approval, and says so."""
    policy = _propose(officer_client, history_type)
    with django_capture_on_commit_callbacks(execute=True):
        response = officer_client.post(
            POLICIES, {"action": "run_now", "_selected_action": [policy.pk]}, follow=True
        )
    message = "Skipped session history: not in effect until a second officer approves"
    assert message in response.content.decode()
    assert not PurgeRun.objects.exists()


def test_run_now_runs_an_approved_policy_with_a_pending_change(
    officer, officer_client, history_type, django_capture_on_commit_callbacks
):
    """A change nobody approves halts nothing: Run now purges with the values in effect,
    and the change page says so."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from compliance.roles import OFFICER
    from retention.services import policy_approve, policy_fingerprint, policy_save

    second = get_user_model().objects.create_user("second", is_staff=True)
    second.groups.add(Group.objects.get(name=OFFICER))
    proposed = _propose(officer_client, history_type)
    policy = policy_approve(policy=proposed, actor=second, expected=policy_fingerprint(proposed))
    policy.period_days = 100
    policy_save(policy=policy, actor=officer, reason="")  # longer: in effect at once
    policy.period_days = 2
    policy_save(policy=policy, actor=officer, reason="")
    policy.refresh_from_db()
    assert policy.is_pending and policy.period_days == 100
    page = officer_client.get(f"{POLICIES}{policy.pk}/change/").content.decode()
    assert "purges run the values in effect" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = officer_client.post(
            POLICIES, {"action": "run_now", "_selected_action": [policy.pk]}, follow=True
        )
    assert "Skipped" not in response.content.decode()
    assert PurgeRun.objects.filter(policy=policy, status="succeeded").count() == 1


def _sessions_shortened(officer, session_type):
    """An approved 90-day session policy with a pending change to 1 day."""
    from retention.services import policy_save

    policy = policy_save(
        policy=RetentionPolicy(name="sessions", target=session_type, period_days=90),
        actor=officer,
    )
    policy.period_days = 1
    policy_save(policy=policy, actor=officer, reason="shorter")
    policy.refresh_from_db()
    assert policy.is_pending and policy.period_days == 90
    return policy


def test_the_approval_page_shows_each_proposed_change(officer, second_officer_client, session_type):
    """The confirmation page shows, per policy, the values in effect and those proposed
    (model, action, period, basis field, exclusions) and posts the proposal's fingerprint."""
    from retention.services import policy_fingerprint

    policy = _sessions_shortened(officer, session_type)
    page = second_officer_client.post(
        POLICIES, {"action": "approve_selected", "_selected_action": [policy.pk]}
    ).content.decode()
    for label in ("target model", "action", "period", "basis field", "exclusions"):
        assert f'<th scope="row">{label}</th>' in page
    assert "<td>90 day(s)</td><td><strong>1 day(s)</strong></td>" in page
    assert "<td>shop.Session</td><td>shop.Session</td>" in page
    expected = f'name="fingerprint_{policy.pk}" value="{policy_fingerprint(policy)}"'
    assert expected in page


def test_an_approval_is_refused_when_the_proposal_changed_after_the_page(
    officer, second_officer_client, session_type, history_type
):
    """Officer B opens the page for "sessions 90 -> 1 day"; A then swaps the proposal for a
    1-day hard delete of the session history; B's confirmation approves nothing, adds no
    ledger entry and says why."""
    from retention.services import policy_save

    policy = _sessions_shortened(officer, session_type)
    selected = {"action": "approve_selected", "_selected_action": [policy.pk]}
    page = second_officer_client.post(POLICIES, selected).content.decode()
    shown = re.search(rf'name="fingerprint_{policy.pk}" value="(\w+)"', page).group(1)
    policy.target, policy.basis_field = history_type, ""
    policy_save(policy=policy, actor=officer, reason="swapped")
    done = second_officer_client.post(
        POLICIES,
        {**selected, "post": "yes", "reason": "ok", f"fingerprint_{policy.pk}": shown},
        follow=True,
    ).content.decode()
    assert "is not the one you were shown" in done and "No change was approved" in done
    policy.refresh_from_db()
    assert policy.is_pending and policy.target == session_type and policy.period_days == 90
    assert policy.pending_change["target"] == history_type.pk
    assert not LedgerEntry.objects.filter(action="policy_approve").exists()


def test_an_approval_without_a_fingerprint_is_refused(officer, second_officer_client, session_type):
    """A forged confirmation that names no fingerprint approves nothing."""
    policy = _sessions_shortened(officer, session_type)
    second_officer_client.post(
        POLICIES,
        {"action": "approve_selected", "_selected_action": [policy.pk], "post": "yes"},
    )
    assert RetentionPolicy.objects.get(pk=policy.pk).is_pending
    assert not LedgerEntry.objects.filter(action="policy_approve").exists()


def test_the_run_list_and_page_show_the_model_the_run_purged(
    admin_client, session_type, old_sessions, history_type
):
    """A run records the model it purged; the list and the run page show it, and still do
    after the policy is pointed at another model."""
    from retention.services import policy_purge

    policy = RetentionPolicy.objects.create(name="s", target=session_type, period_days=90)
    run = policy_purge(policy=policy, actor=None)
    RetentionPolicy.objects.filter(pk=policy.pk).update(target=history_type)
    listing = admin_client.get("/admin/retention/purgerun/").content.decode()
    assert "shop.Session<" in listing and "shop.HistoricalSession" not in listing
    page = admin_client.get(f"/admin/retention/purgerun/{run.pk}/change/").content.decode()
    assert "shop.Session<" in page
