"""The privacy center's shared mechanisms: emailed codes, access links, emails."""

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.models import AccessLink, Challenge, RequestEmail, SubjectRequest
from compliance.services import request_create
from compliance.services.emails import email_send, recipient_digest
from compliance.services.links import (
    access_link_create,
    access_link_resolve,
    access_link_revoke,
)
from compliance.services.verification import (
    MAX_TRIES,
    challenge_check,
    challenge_issue,
    code_digest,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def request_(customer):
    request = request_create(
        subject=customer, kind=SubjectRequest.Kind.ACCESS, jurisdiction="gdpr", actor=None
    )
    request.contact_email = "ada@example.org"
    request.save()
    return request


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_code_is_stored_only_as_keyed_hash(request_):
    """The code is six digits kept as an HMAC, never in clear."""
    challenge, code = challenge_issue(request=request_)
    assert len(code) == 6 and code.isdigit()
    assert code not in challenge.code_hash
    assert challenge.code_hash == code_digest(code, challenge_salt=str(request_.pk))


def test_right_code_verifies_once(request_):
    """The right code is accepted once; the same code again is refused as used."""
    _, code = challenge_issue(request=request_)
    assert challenge_check(request=request_, code=code).ok
    again = challenge_check(request=request_, code=code)
    assert not again.ok and again.reason == "used"


def test_five_wrong_codes_lock_the_challenge(request_):
    """After five wrong codes even the right one is refused."""
    _, code = challenge_issue(request=request_)
    for _ in range(MAX_TRIES):
        assert not challenge_check(request=request_, code=_wrong(code)).ok
    result = challenge_check(request=request_, code=code)
    assert not result.ok and result.reason == "locked"


def test_expired_code_is_refused(request_):
    """A code past its expiry is refused."""
    challenge, code = challenge_issue(request=request_)
    Challenge.objects.filter(pk=challenge.pk).update(expires_at=timezone.now())
    result = challenge_check(request=request_, code=code)
    assert not result.ok and result.reason == "expired"


def test_resend_waits_then_replaces_the_code(request_):
    """A resend within 60 s sends nothing; later it replaces the code on the same row."""
    first, code = challenge_issue(request=request_)
    same, none = challenge_issue(request=request_)
    assert same.pk == first.pk and none is None
    Challenge.objects.filter(pk=first.pk).update(sent_at=timezone.now() - timedelta(seconds=61))
    again, new = challenge_issue(request=request_)
    assert again.pk == first.pk and new is not None
    assert Challenge.objects.filter(request=request_).count() == 1
    if new != code:
        assert not challenge_check(request=request_, code=code).ok


def test_code_of_another_request_is_refused(request_, customer):
    """A code issued for one request does not verify another."""
    other = request_create(
        subject=customer, kind=SubjectRequest.Kind.ERASURE, jurisdiction="gdpr", actor=None
    )
    _, code = challenge_issue(request=request_)
    _, other_code = challenge_issue(request=other)
    if other_code != code:  # one chance in a million that both drew the same digits
        assert not challenge_check(request=other, code=code).ok
    assert challenge_check(request=request_, code=code).ok


def test_link_resolves_by_token_and_purpose_only(request_):
    """A link resolves by its token for its purpose; the stored hash is not the token."""
    link, token = access_link_create(request=request_)
    assert token not in link.token_hash
    assert access_link_resolve(token=token, purpose=AccessLink.Purpose.STATUS).pk == link.pk
    assert access_link_resolve(token=token, purpose=AccessLink.Purpose.DOWNLOAD) is None
    assert access_link_resolve(token=token + "x", purpose=AccessLink.Purpose.STATUS) is None


def test_revoked_or_expired_link_does_not_resolve(request_):
    """A revoked link and an expired one resolve to nothing."""
    link, token = access_link_create(request=request_)
    access_link_revoke(link=link)
    assert access_link_resolve(token=token, purpose=AccessLink.Purpose.STATUS) is None
    old, old_token = access_link_create(
        request=request_, expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert access_link_resolve(token=old_token, purpose=AccessLink.Purpose.STATUS) is None


def test_email_reaches_a_real_smtp_server_and_is_recorded(request_, smtp_inbox):
    """An email is delivered over SMTP; the record keeps a digest, not the address or body."""
    email_send(request=request_, kind="code", context={"code": "123456", "minutes": 10})
    (message,) = smtp_inbox.messages
    assert message["To"] == "ada@example.org"
    assert "Ada" not in message["Subject"] and "ada@" not in message["Subject"]
    assert "123456" in message.get_body(("plain",)).get_content()
    assert "123456" in message.get_body(("html",)).get_content()
    record = RequestEmail.objects.get(request=request_)
    assert record.kind == "code" and record.status == RequestEmail.Status.SENT
    assert record.recipient_digest == recipient_digest("ada@example.org")
    assert "ada" not in record.recipient_digest and len(record.content_sha256) == 64


def test_email_in_german(request_, smtp_inbox):
    """An email rendered in German has a German subject."""
    email_send(request=request_, kind="received", context={"status_url": "x"}, language="de")
    (message,) = smtp_inbox.messages
    assert message["Subject"] == "Wir haben Ihre Anfrage erhalten"
