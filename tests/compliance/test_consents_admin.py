"""The consent admin: purposes and texts, states with their filters, read-only events, a
subject's timeline and receipt, grants and withdrawals recorded by officers only."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.models import (
    ConsentEvent,
    ConsentPurpose,
    ConsentState,
    ConsentText,
    text_sha256,
)
from compliance.services import consent_record
from shop.models import Customer

IP = "203.0.113.9"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) Consent-Test/1"


@pytest.fixture
def purposes(db):
    made = {}
    for slug, name in (("marketing", "Marketing emails"), ("analytics", "Analytics")):
        made[slug] = ConsentPurpose.objects.create(slug=slug, name=name)
        ConsentText.objects.create(
            purpose=made[slug],
            version=1,
            text=f"Yes to {name}.",
            published_at=timezone.now() - timedelta(days=30),
        )
    return made


@pytest.fixture
def bob(db):
    return Customer.objects.create(email="bob@example.org", full_name="Bob Byron")


@pytest.fixture
def consents(customer, bob, purposes):
    """Ada: marketing granted then withdrawn, analytics granted. Bob: marketing granted."""
    now = timezone.now()

    def record(subject, slug, granted, days):
        return consent_record(
            subject=subject,
            purpose=slug,
            granted=granted,
            ip=IP,
            user_agent=AGENT,
            collection_point="signup form",
            at=now - timedelta(days=days),
        )

    return [
        record(customer, "marketing", True, 10),
        record(customer, "analytics", True, 9),
        record(customer, "marketing", False, 2),
        record(bob, "marketing", True, 5),
    ]


def _timeline(subject):
    return reverse("admin:compliance_consent_timeline", args=[subject.pk])


def _receipt(subject):
    return reverse("admin:compliance_consent_receipt", args=[subject.pk])


def _record_url(subject):
    return reverse("admin:compliance_consent_record", args=[subject.pk])


def _states_listed(response):
    return sorted((s.subject.full_name, s.purpose.slug) for s in response.context["cl"].result_list)


def test_state_list_filters_by_purpose_and_state(officer_client, consents, purposes):
    """Filter by purpose, by granted or withdrawn, and both together."""
    url = reverse("admin:compliance_consentstate_changelist")
    marketing = purposes["marketing"].pk
    assert _states_listed(officer_client.get(url, {"purpose__id__exact": marketing})) == [
        ("Ada Lovelace", "marketing"),
        ("Bob Byron", "marketing"),
    ]
    assert _states_listed(officer_client.get(url, {"state": "withdrawn"})) == [
        ("Ada Lovelace", "marketing")
    ]
    both = officer_client.get(url, {"state": "granted", "purpose__id__exact": marketing})
    assert _states_listed(both) == [("Bob Byron", "marketing")]
    assert _timeline(Customer.objects.get(full_name="Bob Byron")).encode() in both.content


def test_timeline_shows_every_event_in_order(auditor_client, customer, consents):
    """Purpose, text version and hash, granted or withdrawn, time, IP, user agent and
    collection point of each event, oldest first; the receipt is linked."""
    response = auditor_client.get(_timeline(customer))
    assert response.status_code == 200
    assert list(response.context["events"]) == consents[:3]
    html = response.content.decode()
    rows = html.split('class="consent-event"')[1:]
    assert [("Marketing" in r, "withdrawn" in r) for r in rows] == [
        (True, False),
        (False, False),
        (True, True),
    ]
    text = consents[0].text
    for value in (text.sha256, "v1", IP, AGENT, "signup form", _receipt(customer)):
        assert value in html


def test_timeline_of_an_unknown_subject_is_404(officer_client, db):
    """An id that is no subject, or no key at all, is a 404."""
    assert officer_client.get(_timeline(Customer(pk=999))).status_code == 404
    url = reverse("admin:compliance_consent_timeline", args=["not-a-number"])
    assert officer_client.get(url).status_code == 404


def test_receipt_is_a_json_download_of_every_event_with_its_text_hash(
    auditor_client, customer, consents
):
    """Auditors download it; it holds each event, its text's sha256 and the wording."""
    response = auditor_client.get(_receipt(customer))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    receipt = json.loads(response.content)
    assert [e["id"] for e in receipt["events"]] == [e.pk for e in consents[:3]]
    assert {e["text_sha256"] for e in receipt["events"]} == {
        consents[0].text.sha256,
        consents[1].text.sha256,
    }
    assert {t["text"] for t in receipt["texts"]} == {
        "Yes to Marketing emails.",
        "Yes to Analytics.",
    }


def test_auditor_sees_no_buttons_and_every_write_path_is_refused(
    auditor_client, customer, consents, purposes
):
    """No grant or withdraw button, no actions; recording, editing purposes and texts,
    adding, changing or deleting events and states: 403 or nothing happens."""
    page = auditor_client.get(_timeline(customer)).content
    assert b'value="Withdraw"' not in page and b'value="Grant"' not in page
    data = {"purpose": "analytics", "granted": "no", "post": "yes", "collection_point": "x"}
    assert auditor_client.post(_record_url(customer), data).status_code == 403
    state = ConsentState.objects.get(subject=customer, purpose=purposes["analytics"])
    changelist = reverse("admin:compliance_consentstate_changelist")
    listing = auditor_client.get(changelist)
    assert b'name="action"' not in listing.content
    auditor_client.post(
        changelist,
        {"action": "withdraw_selected", "_selected_action": [state.pk], "post": "yes",
         "collection_point": "x"},
    )  # fmt: skip
    text = purposes["marketing"].texts.get()
    writes = [
        ("compliance_consentpurpose_add", [], {"slug": "x", "name": "X"}),
        ("compliance_consentpurpose_change", [purposes["marketing"].pk], {"name": "X"}),
        ("compliance_consenttext_add", [], {"purpose": purposes["marketing"].pk}),
        ("compliance_consenttext_change", [text.pk], {"text": "X"}),
        ("compliance_consentevent_add", [], {}),
        ("compliance_consentevent_change", [consents[0].pk], {"granted": "False"}),
        ("compliance_consentevent_delete", [consents[0].pk], {"post": "yes"}),
        ("compliance_consentstate_change", [state.pk], {"granted": "False"}),
        ("compliance_consentstate_delete", [state.pk], {"post": "yes"}),
    ]
    for name, args, body in writes:
        assert auditor_client.post(reverse(f"admin:{name}", args=args), body).status_code == 403
    assert ConsentEvent.objects.count() == 4
    assert ConsentPurpose.objects.filter(name="X").count() == 0
    assert ConsentState.objects.get(pk=state.pk).granted


def test_events_and_states_are_read_only_even_for_superusers(admin_client, consents):
    """Nobody adds, changes or deletes an event or a state in the admin."""
    event = consents[0]
    state = ConsentState.objects.first()
    assert admin_client.get(reverse("admin:compliance_consentevent_add")).status_code == 403
    for model, pk in (("consentevent", event.pk), ("consentstate", state.pk)):
        page = admin_client.get(reverse(f"admin:compliance_{model}_change", args=[pk]))
        assert page.status_code == 200 and b'name="_save"' not in page.content
        assert (
            admin_client.post(
                reverse(f"admin:compliance_{model}_change", args=[pk]), {}
            ).status_code
            == 403
        )
        delete = reverse(f"admin:compliance_{model}_delete", args=[pk])
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert ConsentEvent.objects.count() == 4


def test_officer_grants_and_withdraws_from_the_timeline(officer_client, officer, bob, consents):
    """Each is one button, then a confirmation; the event names the officer and the
    collection point typed."""
    first = officer_client.post(_record_url(bob), {"purpose": "marketing", "granted": "no"})
    assert first.status_code == 200 and b"withdraws" in first.content
    assert ConsentEvent.objects.count() == 4  # nothing before the confirmation
    done = officer_client.post(
        _record_url(bob),
        {"purpose": "marketing", "granted": "no", "post": "yes", "collection_point": "phone"},
    )
    assert done.status_code == 302 and done["Location"] == _timeline(bob)
    event = ConsentEvent.objects.latest("pk")
    assert (event.subject, event.granted, event.actor, event.collection_point) == (
        bob,
        False,
        officer,
        "phone",
    )
    assert b'value="Grant"' in officer_client.get(_timeline(bob)).content


def test_recording_needs_a_post(officer_client, bob, purposes):
    """A GET of the record page is refused: links cannot record consent."""
    assert officer_client.get(_record_url(bob), {"purpose": "marketing"}).status_code == 403
    assert not ConsentEvent.objects.exists()


def test_refusal_is_shown_and_changes_nothing(officer_client, bob, purposes):
    """A grant to an inactive purpose: the refusal's message, no event."""
    ConsentPurpose.objects.filter(slug="analytics").update(active=False)
    data = {"purpose": "analytics", "granted": "yes", "post": "yes", "collection_point": "x"}
    response = officer_client.post(_record_url(bob), data, follow=True)
    assert "inactive" in str(list(response.context["messages"])[0])
    assert not ConsentEvent.objects.exists()


def test_gdpr_art_7_3_withdrawal_as_easy_as_granting(officer_client, customer, bob, consents):
    """Art. 7(3): withdrawing takes the same steps as granting: one action on the selected
    consents, one confirmation; both are offered side by side."""
    changelist = reverse("admin:compliance_consentstate_changelist")
    actions = officer_client.get(changelist).context["action_form"].fields["action"].choices
    assert {"grant_selected", "withdraw_selected"} <= {name for name, _ in actions}
    for action, subject in (("withdraw_selected", bob), ("grant_selected", customer)):
        state = ConsentState.objects.get(subject=subject, purpose__slug="marketing")
        selection = {"action": action, "_selected_action": [state.pk]}
        confirm = officer_client.post(changelist, selection)
        assert confirm.status_code == 200 and b"are you sure" in confirm.content
        done = officer_client.post(
            changelist, {**selection, "post": "yes", "collection_point": "support call"}
        )
        assert done.status_code == 302
        state.refresh_from_db()
        assert state.granted is (action == "grant_selected")
    bob_state = ConsentState.objects.get(subject=bob, purpose__slug="marketing")
    assert bob_state.granted_at == consents[3].occurred_at  # the grant is kept
    assert ConsentEvent.objects.filter(subject=bob, granted=True).count() == 1


def test_consented_text_is_read_only_and_shows_its_hash(officer_client, consents, purposes):
    """The change page of a consented text has no Save and refuses a POST; an unconsented
    text is edited and gets the hash of its new wording."""
    text = consents[0].text
    url = reverse("admin:compliance_consenttext_change", args=[text.pk])
    page = officer_client.get(url)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert text.sha256.encode() in page.content
    data = {"purpose": text.purpose_id, "version": 1, "text": "Other",
            "published_at_0": "2024-01-01", "published_at_1": "00:00:00"}  # fmt: skip
    assert officer_client.post(url, data).status_code == 403
    fresh = ConsentText.objects.create(purpose=purposes["marketing"], version=2, text="Draft")
    url = reverse("admin:compliance_consenttext_change", args=[fresh.pk])
    response = officer_client.post(url, {**data, "version": 2, "text": " Final wording\n"})
    assert response.status_code == 302
    fresh.refresh_from_db()
    assert fresh.text == " Final wording\n"  # kept exactly, not stripped
    assert fresh.sha256 == text_sha256(" Final wording\n")


def test_officer_adds_a_purpose_and_a_text(officer_client, db):
    """Purposes and texts are added in the admin; the text's hash is computed."""
    add = reverse("admin:compliance_consentpurpose_add")
    response = officer_client.post(add, {"slug": "sharing", "name": "Sharing", "active": "on"})
    assert response.status_code == 302
    purpose = ConsentPurpose.objects.get(slug="sharing")
    response = officer_client.post(
        reverse("admin:compliance_consenttext_add"),
        {"purpose": purpose.pk, "version": 1, "text": "Yes, share.",
         "published_at_0": "2024-01-01", "published_at_1": "00:00:00"},
    )  # fmt: skip
    assert response.status_code == 302
    assert purpose.latest_text().sha256 == text_sha256("Yes, share.")


def test_a_purged_subjects_consent_evidence_stays_in_the_admin(officer_client, officer, consents):
    """Once a customer with consent events is hard-deleted, the event list still lists their
    events (marked as row gone), and their timeline and receipt open and show every event."""
    from retention.services import rows_hard_delete

    ada = consents[0].subject
    rows_hard_delete(queryset=Customer.all_objects.filter(pk=ada.pk), actor=officer, reason="purge")
    assert not Customer.all_objects.filter(pk=ada.pk).exists()

    listing = officer_client.get(reverse("admin:compliance_consentevent_changelist"))
    assert listing.status_code == 200
    listed = {event.pk for event in listing.context["cl"].result_list}
    assert listed == {event.pk for event in consents}
    assert "(row gone)" in listing.content.decode()

    timeline = officer_client.get(_timeline(ada))
    assert timeline.status_code == 200
    assert list(timeline.context["events"]) == consents[:3]

    receipt = officer_client.get(_receipt(ada))
    assert receipt.status_code == 200
    assert [e["id"] for e in json.loads(receipt.content)["events"]] == [e.pk for e in consents[:3]]
