"""The privacy center's flow: start a request, confirm it with the emailed code, follow it."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from compliance.models import Challenge, RequestEmail, SubjectRequest
from compliance.services import request_extend, request_reject

pytestmark = pytest.mark.django_db(transaction=True)
State = SubjectRequest.State


@pytest.fixture(autouse=True)
def _fresh_limits():
    cache.clear()
    yield
    cache.clear()


def _start(client, email="ada@example.org", **fields):
    data = {"email": email, "kind": "access", "jurisdiction": "gdpr", "details": "", "website": ""}
    data.update(fields)
    return client.post(reverse("privacy_center:start"), data, follow=True)


def _code(inbox) -> str:
    body = inbox.messages[-1].get_body(("plain",)).get_content()
    return re.search(r"\b(\d{6})\b", body).group(1)


def _verify(client, code):
    return client.post(reverse("privacy_center:verify"), {"code": code})


def _wrong(code):
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _without_csrf(content: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def test_start_answers_the_same_for_known_and_unknown_emails(client, customer, smtp_inbox):
    """Known and unknown emails get byte-identical pages and the same work: a request, a
    code, an email."""
    known = _start(client, "ada@example.org")
    unknown = _start(client.__class__(), "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert _without_csrf(known.content) == _without_csrf(unknown.content)
    assert SubjectRequest.objects.count() == 2
    assert Challenge.objects.count() == 2
    assert RequestEmail.objects.filter(kind="code").count() == 2 == len(smtp_inbox.messages)
    mine = SubjectRequest.objects.get(contact_email="ada@example.org")
    assert mine.subject == customer and mine.channel == SubjectRequest.Channel.CENTER
    assert SubjectRequest.objects.get(contact_email="nobody@example.org").subject is None


def test_right_code_verifies_and_leads_to_the_status_page(client, customer, smtp_inbox):
    """The emailed code verifies the request (method, time, address) and opens its status
    page through a link whose path holds only a random token."""
    _start(client)
    answer = _verify(client, _code(smtp_inbox))
    assert answer.status_code == 302
    token = answer.url.rstrip("/").rsplit("/", 1)[-1]
    assert answer.url == reverse("privacy_center:status", args=[token]) and len(token) >= 40
    request = SubjectRequest.objects.get()
    assert request.state == State.VERIFIED
    assert request.verification_method == SubjectRequest.VerificationMethod.EMAIL_CODE
    assert request.verified_at and request.verified_ip == "127.0.0.1"
    page = client.get(answer.url)
    assert page.status_code == 200 and b"ada" not in page.content
    assert page["Referrer-Policy"] == "no-referrer"
    received = smtp_inbox.messages[-1]
    assert received["Subject"] == "We received your request"
    assert answer.url in received.get_body(("plain",)).get_content()


def test_person_with_no_data_is_answered_and_completed(client, smtp_inbox):
    """An email nobody has: after the code, the request is completed with "we hold no
    personal data about you", and that answer is emailed."""
    _start(client, "nobody@example.org")
    answer = _verify(client, _code(smtp_inbox))
    request = SubjectRequest.objects.get()
    assert request.state == State.COMPLETED
    last = smtp_inbox.messages[-1]
    assert "We hold no personal data about you." in last.get_body(("plain",)).get_content()
    assert b"We hold no personal data about you." in client.get(answer.url).content


def test_five_wrong_codes_lock_the_request_until_a_new_code(client, customer, smtp_inbox):
    """Five wrong codes are refused with a message; then even the right one is refused."""
    _start(client)
    code = _code(smtp_inbox)
    for _ in range(5):
        page = _verify(client, _wrong(code))
        assert page.status_code == 400
    page = _verify(client, code)
    assert page.status_code == 400 and b"Too many wrong codes" in page.content
    assert SubjectRequest.objects.get().state == State.RECEIVED


def test_expired_code_is_refused_with_a_message(client, customer, smtp_inbox):
    """An expired code is refused and the page says to ask for a new one."""
    _start(client)
    Challenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    page = _verify(client, _code(smtp_inbox))
    assert page.status_code == 400 and b"expired" in page.content


def test_reused_code_does_not_verify_again(client, customer, smtp_inbox):
    """Once used, the code and the session's pending request are spent."""
    _start(client)
    code = _code(smtp_inbox)
    assert _verify(client, code).status_code == 302
    assert _verify(client, code).status_code == 400


def test_resend_replaces_the_code_in_the_same_request(client, customer, smtp_inbox):
    """A resend within a minute sends nothing; later it replaces the code, same request."""
    _start(client)
    first = _code(smtp_inbox)
    client.post(reverse("privacy_center:resend"))
    assert len(smtp_inbox.messages) == 1
    Challenge.objects.update(sent_at=timezone.now() - timedelta(seconds=61))
    client.post(reverse("privacy_center:resend"))
    assert len(smtp_inbox.messages) == 2 and SubjectRequest.objects.count() == 1
    if _code(smtp_inbox) != first:
        assert _verify(client, first).status_code == 400
    assert _verify(client, _code(smtp_inbox)).status_code == 302


def test_a_link_of_another_purpose_or_unknown_token_shows_a_clear_page(client, customer):
    """A made-up token or one for a download is a 404 page in the center's layout."""
    from compliance.models import AccessLink
    from compliance.services.links import access_link_create

    request = SubjectRequest.objects.create(
        kind="access", subject_key="", received_at=timezone.now(), due_at=timezone.now()
    )
    _, token = access_link_create(request=request, purpose=AccessLink.Purpose.DOWNLOAD)
    for value in (token, "x" * 43, "%00"):
        page = client.get(reverse("privacy_center:status", args=[value]))
        assert page.status_code == 404 and b"This link does not work" in page.content


def test_rate_limit_per_email_answers_429(client, settings, smtp_inbox):
    """Past the hourly limit for one email, start is refused with a clear page."""
    settings.PRIVACY_RATE_PER_HOUR = 2
    for _ in range(2):
        assert _start(client.__class__(), "nobody@example.org").status_code == 200
    page = _start(client, "nobody@example.org")
    assert page.status_code == 429 and b"Too many attempts" in page.content


def test_rate_limit_per_address_on_verify(client, settings, customer, smtp_inbox):
    """Past the hourly limit of code entries, verify is refused before checking the code."""
    settings.PRIVACY_RATE_PER_HOUR = 3
    _start(client)
    for _ in range(3):
        _verify(client, "000000")
    assert _verify(client, _code(smtp_inbox)).status_code == 429


def test_honeypot_gets_the_same_page_and_nothing_is_recorded(client, customer, smtp_inbox):
    """A filled honeypot field gets the code page but no request and no email."""
    page = _start(client, website="http://spam.example")
    assert page.status_code == 200 and b"Enter your code" in page.content
    assert SubjectRequest.objects.count() == 0 and smtp_inbox.messages == []


def test_rectification_asks_what_to_correct(client, customer, smtp_inbox):
    """A correction needs its details; given, they are kept on the request."""
    page = _start(client, kind="rectification")
    assert page.status_code == 200 and b"Say what we should correct." in page.content
    _start(client, kind="rectification", details="My name is misspelt")
    assert SubjectRequest.objects.get().details == "My name is misspelt"


def test_region_chooses_the_jurisdiction_and_clock(client, customer, smtp_inbox):
    """Choosing California records a CCPA request due 45 days after receipt."""
    _start(client, jurisdiction="ccpa")
    request = SubjectRequest.objects.get()
    assert request.jurisdiction == "ccpa"
    assert (request.due_at - request.received_at).days == 45


def test_bad_input_gets_messages_not_errors(client):
    """Malformed fields come back with messages, never a 500."""
    page = _start(client, email="not-an-email", kind="steal", jurisdiction="mars")
    assert page.status_code == 200 and b'class="errors"' in page.content
    assert _verify(client, "123456").status_code == 400


def test_officer_decisions_are_emailed(client, customer, smtp_inbox):
    """Extending and then rejecting a center request emails the person, with the reasons."""
    _start(client)
    _verify(client, _code(smtp_inbox))
    request = SubjectRequest.objects.get()
    officer = User.objects.create_superuser("o", "o@example.org", "x")
    request_extend(request=request, actor=officer, reason="Many systems to search", days=10)
    assert "Many systems to search" in smtp_inbox.messages[-1].get_body(("plain",)).get_content()
    request_reject(request=request, actor=officer, reason="Manifestly unfounded")
    last = smtp_inbox.messages[-1]
    assert last["Subject"] == "Your request was refused"
    assert "Manifestly unfounded" in last.get_body(("plain",)).get_content()


def test_only_the_privacy_center_follows_the_browser_language(client, smtp_inbox):
    """German browsers see the center in German; the admin stays English."""
    page = client.get(reverse("privacy_center:start"), HTTP_ACCEPT_LANGUAGE="de")
    assert b"Anfrage stellen" in page.content and page["Content-Language"] == "de"
    admin = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="de")
    assert b"Log in" in admin.content


def test_language_switch_sets_the_center_language(client):
    """The switch on the page changes the center's language."""
    client.post(reverse("privacy_center:language"), {"language": "de", "next": "/privacy/"})
    assert b"Anfrage stellen" in client.get(reverse("privacy_center:start")).content


def test_an_erasure_that_answers_a_center_request_emails_its_counts(client, customer, smtp_inbox):
    """The erasure completes the person's request and emails them the certificate's counts:
    what was done, in numbers, and nothing of the data that was erased."""
    from compliance.services import subject_erase

    _start(client, kind="erasure")
    _verify(client, _code(smtp_inbox))
    request = SubjectRequest.objects.get()
    officer = User.objects.create_superuser("o", "o@example.org", "x")

    result = subject_erase(subject=customer, actor=officer, reason="Art. 17", request=request)

    request.refresh_from_db()
    assert request.state == SubjectRequest.State.COMPLETED
    body = smtp_inbox.messages[-1].get_body(("plain",)).get_content()
    assert f"certificate #{result.certificate.pk}" in body
    assert "records anonymised" in body and "Ada" not in body and "Lovelace" not in body


def test_a_code_in_other_digits_is_a_format_error_and_costs_no_try(client, customer, smtp_inbox):
    """Fullwidth or Arabic-Indic digits are refused as a format, not counted as a wrong code;
    the last try left is named in the singular."""
    _start(client)
    code = _code(smtp_inbox)
    page = _verify(client, "١٢٣٤٥٦")
    assert "Enter the 6 digits" in page.content.decode()
    assert Challenge.objects.get().tries == 0
    for _ in range(3):
        _verify(client, _wrong(code))
    assert "You have 1 more try." in _verify(client, _wrong(code)).content.decode()


def test_a_reload_or_second_click_keeps_one_request(client, customer, smtp_inbox):
    """Starting the same request again from the same browser while it waits for its code
    files no second request; the code page opens again by its address (Back, a reload)."""
    first = _start(client)
    assert first.redirect_chain == [(reverse("privacy_center:verify"), 302)]
    _start(client)
    assert SubjectRequest.objects.count() == 1
    assert len(smtp_inbox.messages) == 1  # the second send waits a minute
    page = client.get(reverse("privacy_center:verify"))
    assert page.status_code == 200 and b"Enter your code" in page.content
    _start(client, kind="erasure")  # another request is another request
    assert SubjectRequest.objects.count() == 2
