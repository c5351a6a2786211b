"""Consent preferences at /privacy/preferences/ and Global Privacy Control: the person's own
grants and withdrawals with the text they saw, and the GPC opt-out recorded once, server-side."""

import json
import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.utils import timezone

from compliance.models import (
    AccessLink,
    ConsentEvent,
    ConsentPurpose,
    ConsentState,
    ConsentText,
    SubjectRequest,
)
from compliance.privacy_center.middleware import PREFERENCES_SESSION_KEY
from compliance.services import GPC, PRIVACY_CENTER, consent_record, gpc_honour, request_create
from compliance.services.links import access_link_create, access_link_revoke
from shop.models import Customer

URL = "/privacy/preferences/"
GPC_ON = {"HTTP_SEC_GPC": "1"}


def _purpose(slug, name, *, sale=False, wording="Yes."):
    purpose = ConsentPurpose.objects.create(slug=slug, name=name, sale_or_sharing=sale)
    ConsentText.objects.create(
        purpose=purpose, version=1, text=wording, published_at=timezone.now() - timedelta(days=3)
    )
    return purpose


@pytest.fixture
def marketing(db):
    return _purpose("marketing", "Marketing emails", wording="Yes, email me offers.")


@pytest.fixture
def sharing(db):
    return _purpose("partners", "Sharing with partners", sale=True, wording="Share my data.")


def _grant(subject, purpose, days_ago=2):
    return consent_record(
        subject=subject,
        purpose=purpose,
        granted=True,
        collection_point="signup form",
        at=timezone.now() - timedelta(days=days_ago),
    )


def _open(client, subject):
    """A preferences session for `subject`, as opening their link leaves it."""
    session = client.session
    session[PREFERENCES_SESSION_KEY] = subject.pk
    session.save()


def _state(subject, purpose):
    return ConsentState.objects.filter(subject=subject, purpose=purpose).first()


def test_page_shows_each_purpose_with_its_text_and_state(client, customer, marketing, sharing):
    """Each purpose is listed with its current wording and the person's state."""
    _grant(customer, marketing)
    _open(client, customer)
    body = client.get(URL).content.decode()
    assert "Yes, email me offers." in body and "Share my data." in body
    assert "You consent." in body and "You have not chosen yet." in body


def test_page_without_a_preferences_session_is_refused(client, customer, marketing):
    """No session opened from a link: 403 and a page saying to ask for a new link."""
    response = client.get(URL)
    assert response.status_code == 403
    assert "ask for a new one" in response.content.decode()


def test_session_of_another_person_shows_only_their_state(client, customer, marketing):
    """The page is bound to the session's person: another person's grant does not show."""
    other = Customer.objects.create(email="bob@example.org", full_name="Bob")
    _grant(other, marketing)
    _open(client, customer)
    body = client.get(URL).content.decode()
    assert "You have not chosen yet." in body and "You consent." not in body


def test_withdraw_through_the_page_records_privacy_center_and_text(client, customer, marketing):
    """A withdrawal posted from the page is an event with collection point "privacy center"
    and the text version shown, and the state turns withdrawn."""
    _grant(customer, marketing)
    _open(client, customer)
    response = client.post(
        URL,
        {"purpose": "marketing", "version": "1", "choice": "withdraw"},
        HTTP_USER_AGENT="Prefs-Test/1",
        REMOTE_ADDR="203.0.113.7",
    )
    assert response.status_code == 302
    event = ConsentEvent.objects.filter(subject=customer).latest("occurred_at")
    assert (event.granted, event.collection_point, event.text.version) == (
        False,
        PRIVACY_CENTER,
        1,
    )
    assert (event.ip_address, event.user_agent, event.actor) == (
        "203.0.113.7",
        "Prefs-Test/1",
        None,
    )
    assert _state(customer, marketing).granted is False


def test_grant_through_the_page_records_the_text_version(client, customer, marketing):
    """A grant from the page refers to the version the page showed (here v2)."""
    ConsentText.objects.create(purpose=marketing, version=2, text="Offers, monthly.")
    _open(client, customer)
    assert "Offers, monthly." in client.get(URL).content.decode()
    client.post(URL, {"purpose": "marketing", "version": "2", "choice": "grant"})
    state = _state(customer, marketing)
    assert (state.granted, state.text.version) == (True, 2)
    assert ConsentEvent.objects.get(subject=customer).collection_point == PRIVACY_CENTER


def test_stale_form_is_refused_with_a_message(client, customer, marketing):
    """The wording changed since the page was shown: the grant is refused, nothing recorded,
    and the page says to read the current wording."""
    _open(client, customer)
    ConsentText.objects.create(purpose=marketing, version=2, text="New wording.")
    response = client.post(
        URL, {"purpose": "marketing", "version": "1", "choice": "grant"}, follow=True
    )
    assert "changed since the page was shown" in response.content.decode()
    assert not ConsentEvent.objects.filter(subject=customer).exists()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"purpose": "marketing", "version": "x", "choice": "grant"},
        {"purpose": "marketing", "version": "1", "choice": "maybe"},
        {"purpose": "nope", "version": "1", "choice": "grant"},
        {"purpose": "marketing", "version": "99999999999", "choice": "grant"},
    ],
)
def test_malformed_choice_gets_a_message_not_a_500(client, customer, marketing, data):
    """Malformed or unknown values: a message on the page, nothing recorded."""
    _open(client, customer)
    response = client.post(URL, data, follow=True)
    assert response.status_code == 200
    assert 'class="messages"' in response.content.decode()
    assert not ConsentEvent.objects.exists()


def test_gpc_recorded_once_and_only_for_sale_or_sharing(client, customer, marketing, sharing):
    """Sec-GPC: 1 withdraws the sale/sharing purpose (source "GPC") and leaves the others;
    a second request with the signal records nothing more."""
    _grant(customer, marketing)
    _grant(customer, sharing)
    _open(client, customer)
    client.get(URL, **GPC_ON)
    client.get("/privacy/", **GPC_ON)
    gpc = ConsentEvent.objects.filter(collection_point=GPC)
    assert [(e.purpose, e.granted) for e in gpc] == [(sharing, False)]
    assert _state(customer, sharing).granted is False
    assert _state(customer, marketing).granted is True


def test_gpc_is_recorded_before_the_view_runs(client, customer, sharing):
    """The opt-out exists when the page is rendered: the page shows the withdrawn state."""
    _grant(customer, sharing)
    _open(client, customer)
    body = client.get(URL, **GPC_ON).content.decode()
    assert "Opt-out preference signal honoured" in body
    assert "You do not consent." in body


def test_later_grant_after_gpc_stands_and_no_header_changes_nothing(client, customer, sharing):
    """After the GPC opt-out the person grants again: a later request with the signal does
    not withdraw it again, and one without the signal is no opt-in."""
    _grant(customer, sharing)
    _open(client, customer)
    client.get(URL, **GPC_ON)
    client.post(URL, {"purpose": "partners", "version": "1", "choice": "grant"}, **GPC_ON)
    client.get(URL, **GPC_ON)
    assert _state(customer, sharing).granted is True
    assert ConsentEvent.objects.filter(collection_point=GPC).count() == 1
    client.post(URL, {"purpose": "partners", "version": "1", "choice": "withdraw"})
    events = ConsentEvent.objects.count()
    client.get(URL)
    assert ConsentEvent.objects.count() == events
    assert _state(customer, sharing).granted is False


def test_request_without_the_header_records_nothing(client, customer, sharing):
    """No Sec-GPC header (or a value other than 1): no event, no notice."""
    _grant(customer, sharing)
    _open(client, customer)
    body = client.get(URL, HTTP_SEC_GPC="0").content.decode()
    assert "Opt-out preference signal honoured" not in body
    assert not ConsentEvent.objects.filter(collection_point=GPC).exists()


def test_gpc_from_an_unknown_visitor_records_nothing(client, customer, sharing):
    """No preferences session and no mapped user: the signal is nobody's to record."""
    _grant(customer, sharing)
    client.get("/privacy/", **GPC_ON)
    assert not ConsentEvent.objects.filter(collection_point=GPC).exists()


def subject_by_email(user):
    """The host mapping used by the tests: the customer with the user's email."""
    return Customer.objects.filter(email=user.email).first()


def test_gpc_from_a_signed_in_user_mapped_to_a_subject(client, settings, customer, sharing):
    """COMPLIANCE_SUBJECT_FOR_USER maps the host's signed-in user to the subject."""
    settings.COMPLIANCE_SUBJECT_FOR_USER = f"{__name__}.subject_by_email"
    _grant(customer, sharing)
    client.force_login(User.objects.create_user("ada", email=customer.email))
    client.get("/privacy/", **GPC_ON)
    assert ConsentEvent.objects.get(collection_point=GPC).subject_id == customer.pk


def test_gpc_before_any_grant_keeps_a_later_grant(customer, sharing):
    """The signal seen before anything was granted still counts once: the person's later
    grant is not withdrawn by the next signal."""
    assert [e.granted for e in gpc_honour(subject=customer)] == [False]
    _grant(customer, sharing, days_ago=0)
    assert gpc_honour(subject=customer) == []
    assert _state(customer, sharing).granted is True


def test_gpc_signals_racing_record_one_opt_out(postgres, transactional_db, customer, sharing):
    """Four connections honouring the signal for one subject at once (PostgreSQL): one
    opt-out is recorded, no error."""
    _grant(customer, sharing)
    start, errors = threading.Barrier(4), []

    def worker():
        try:
            start.wait()
            gpc_honour(subject=customer)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ConsentEvent.objects.filter(collection_point=GPC).count() == 1


def test_gpc_json_is_served(client):
    """/.well-known/gpc.json says the site honours GPC, with a lastUpdate date."""
    response = client.get("/.well-known/gpc.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = json.loads(response.content)
    assert data["gpc"] is True
    assert timezone.datetime.fromisoformat(data["lastUpdate"])


def test_page_in_german_from_the_browser_language(client, customer, sharing):
    """Accept-Language: de shows the page in German, the GPC notice included."""
    _open(client, customer)
    body = client.get(URL, HTTP_ACCEPT_LANGUAGE="de", **GPC_ON).content.decode()
    assert "Opt-out-Präferenzsignal berücksichtigt" in body
    assert "Widerrufen: Sharing with partners" not in body  # withdrawn by the signal
    assert "Erteilen: Sharing with partners" in body


def test_admin_keeps_its_language(admin_client):
    """The privacy center's languages stop at /privacy/: the admin stays in LANGUAGE_CODE."""
    body = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert 'lang="en-gb"' in body


def test_officer_flags_a_purpose_as_sale_or_sharing_in_the_admin(officer_client, db):
    """The purpose form shows the sale or sharing checkbox and saves it."""
    add = "/admin/compliance/consentpurpose/add/"
    assert 'name="sale_or_sharing"' in officer_client.get(add).content.decode()
    data = {"slug": "partners", "name": "Partners", "active": "on", "sale_or_sharing": "on"}
    assert officer_client.post(add, data).status_code == 302
    assert ConsentPurpose.objects.get(slug="partners").sale_or_sharing is True


def _link(subject, purpose=AccessLink.Purpose.PREFERENCES, **kwargs):
    request = request_create(
        subject=subject, kind=SubjectRequest.Kind.ACCESS, jurisdiction="gdpr", actor=None
    )
    return access_link_create(request=request, purpose=purpose, **kwargs)


def test_link_opens_the_page_of_its_person_without_the_token_in_the_url(
    client, customer, marketing
):
    """A live preferences link opens a session for its person and redirects to the page."""
    _grant(customer, marketing)
    _link_row, token = _link(customer)
    response = client.get(f"{URL}{token}/")
    assert response.status_code == 302 and response["Location"] == URL
    assert "You consent." in client.get(URL).content.decode()


def test_link_of_another_person_opens_only_their_page(client, customer, marketing):
    """Opening another person's link replaces the session: the page shows that person only,
    and the choice is recorded for them."""
    other = Customer.objects.create(email="bob@example.org", full_name="Bob")
    _open(client, customer)
    _row, token = _link(other)
    client.get(f"{URL}{token}/")
    client.post(URL, {"purpose": "marketing", "version": "1", "choice": "grant"})
    assert _state(other, marketing).granted is True
    assert _state(customer, marketing) is None


@pytest.mark.parametrize("case", ["expired", "revoked", "status link", "unknown"])
def test_dead_or_foreign_links_are_refused(client, customer, marketing, case):
    """Expired, revoked, made for another purpose or unknown: 403, no session opened."""
    if case == "expired":
        _row, token = _link(customer, expires_at=timezone.now() - timedelta(seconds=1))
    elif case == "revoked":
        row, token = _link(customer)
        access_link_revoke(link=row)
    elif case == "status link":
        _row, token = _link(customer, purpose=AccessLink.Purpose.STATUS)
    else:
        token = "x" * 43
    response = client.get(f"{URL}{token}/")
    assert response.status_code == 403
    assert "ask for a new one" in response.content.decode()
    assert client.get(URL).status_code == 403
