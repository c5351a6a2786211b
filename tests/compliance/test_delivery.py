"""Delivery of the copy: release by an officer, the person's download behind a fresh emailed
code, and how the request ends (downloaded, or expired without download)."""

import re
import zipfile
from datetime import timedelta
from io import BytesIO

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from compliance.models import AccessLink, SubjectExport, SubjectRequest
from compliance.services import (
    ComplianceRefused,
    export_download,
    exports_expire,
    request_create,
    request_verify,
    subject_export,
)
from compliance.services.delivery import (
    DeliveryRefused,
    delivery_code_send,
    delivery_download,
    delivery_link,
    export_release,
    request_release,
)
from compliance.services.links import access_link_create
from versions.models import LedgerAction, LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)

URL = "http://testserver".__add__


def _center_request(subject, email="ada@example.org"):
    """An access request as the privacy center records it: contact address, verified."""
    request = request_create(subject=subject, kind="access", jurisdiction="gdpr", actor=None)
    request.contact_email = email
    request.channel = SubjectRequest.Channel.CENTER
    request.save()
    return request_verify(
        request=request, actor=None, method=SubjectRequest.VerificationMethod.EMAIL_CODE
    )


@pytest.fixture
def answered(customer, officer):
    """A verified access request from the center whose export is done (in progress)."""
    request = _center_request(customer)
    export = subject_export(subject=customer, actor=officer, reason="", request=request)
    request.refresh_from_db()
    assert request.state == SubjectRequest.State.IN_PROGRESS
    return request, export


def _token(message) -> str:
    body = message.get_body(("plain",)).get_content()
    return re.search(r"/privacy/download/([^/\s]+)/", body).group(1)


def _code(message) -> str:
    return re.search(r"\b(\d{6})\b", message.get_body(("plain",)).get_content()).group(1)


def _released(answered, officer, smtp_inbox):
    request, export = answered
    export_release(export=export, actor=officer, absolute_url=URL)
    return _token(smtp_inbox.messages[-1])


def test_release_emails_a_link_to_the_download_page(answered, officer, smtp_inbox, client):
    """A release records who and when, writes a ledger step and emails a working link."""
    request, export = answered
    result = export_release(export=export, actor=officer, absolute_url=URL)
    assert result.released
    export.refresh_from_db()
    assert export.released_by == officer and export.released_at is not None
    link = AccessLink.objects.get(request=request, purpose=AccessLink.Purpose.DOWNLOAD)
    assert export.expires_at == link.expires_at
    assert abs(link.expires_at - timezone.now() - timedelta(days=7)) < timedelta(minutes=1)
    (message,) = smtp_inbox.messages
    assert message["To"] == "ada@example.org"
    assert "Ada" not in message["Subject"] and "ada@" not in message["Subject"]
    token = _token(message)
    assert delivery_link(token).pk == link.pk
    assert token not in link.token_hash  # only its hash is stored
    page = client.get(reverse("privacy_center:download", args=[token]))
    assert page.status_code == 200 and b"Email me a code" in page.content
    step = LedgerEntry.objects.filter(action=LedgerAction.REQUEST).order_by("id").last()
    assert step.details["transition"] == "release" and step.details["export"] == export.pk


def test_link_lifetime_follows_the_setting(answered, officer, smtp_inbox, settings):
    """COMPLIANCE_DOWNLOAD_LINK_DAYS sets how long the link (and the copy) lives."""
    settings.COMPLIANCE_DOWNLOAD_LINK_DAYS = 2
    request, export = answered
    export_release(export=export, actor=officer, absolute_url=URL)
    link = AccessLink.objects.get(request=request, purpose=AccessLink.Purpose.DOWNLOAD)
    assert abs(link.expires_at - timezone.now() - timedelta(days=2)) < timedelta(minutes=1)


def test_second_release_is_a_no_op_with_a_message(answered, officer, smtp_inbox):
    """Releasing again sends nothing, makes no link and says who released it when."""
    request, export = answered
    export_release(export=export, actor=officer, absolute_url=URL)
    again = request_release(request=request, actor=officer, absolute_url=URL)
    assert not again.released
    assert "already released" in again.message and "officer" in again.message
    assert len(smtp_inbox.messages) == 1
    assert AccessLink.objects.filter(purpose=AccessLink.Purpose.DOWNLOAD).count() == 1


def test_release_needs_the_release_permission(answered, auditor, smtp_inbox):
    """An auditor cannot release a copy; nothing is sent."""
    _, export = answered
    with pytest.raises(PermissionDenied):
        export_release(export=export, actor=auditor, absolute_url=URL)
    assert not smtp_inbox.messages
    assert SubjectExport.objects.get().released_at is None


def test_release_refused_without_a_contact_address(customer, officer, smtp_inbox):
    """A request an officer recorded has no address to write to: release says what to do."""
    request = request_create(subject=customer, kind="access", jurisdiction="gdpr", actor=None)
    request_verify(request=request, actor=officer, method="document")
    export = subject_export(subject=customer, actor=officer, reason="", request=request)
    with pytest.raises(ComplianceRefused, match="no contact address"):
        export_release(export=export, actor=officer, absolute_url=URL)
    assert not smtp_inbox.messages


def test_release_refused_for_an_export_that_is_not_done(answered, officer, smtp_inbox):
    """A failed export cannot be released."""
    _, export = answered
    SubjectExport.objects.filter(pk=export.pk).update(status=SubjectExport.Status.FAILED)
    export.refresh_from_db()
    with pytest.raises(ComplianceRefused, match="only a finished export"):
        export_release(export=export, actor=officer, absolute_url=URL)


def test_download_before_release_is_refused(answered, smtp_inbox, client):
    """A download link of a request whose copy was not released leads to nothing."""
    request, _ = answered
    link, token = access_link_create(request=request, purpose=AccessLink.Purpose.DOWNLOAD)
    with pytest.raises(DeliveryRefused, match="not been released"):
        delivery_download(link=link, code="000000")
    page = client.post(reverse("privacy_center:download", args=[token]), {"action": "send"})
    assert b"not been released yet" in page.content
    assert not smtp_inbox.messages  # no code is sent for a copy that is not there


def test_expired_download_link_is_refused(answered, officer, smtp_inbox, client):
    """After its expiry the link shows the same "does not work" page as an unknown one."""
    token = _released(answered, officer, smtp_inbox)
    AccessLink.objects.filter(purpose=AccessLink.Purpose.DOWNLOAD).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    url = reverse("privacy_center:download", args=[token])
    assert client.get(url).status_code == 404
    response = client.post(url, {"action": "send"})
    assert response.status_code == 404 and b"does not work" in response.content
    unknown = client.get(reverse("privacy_center:download", args=["x" * 43]))
    assert unknown.status_code == 404 and b"does not work" in unknown.content


def test_status_link_is_not_a_download_link(answered, smtp_inbox, client):
    """A link made for another purpose (the status page) does not open the download page."""
    request, _ = answered
    _, token = access_link_create(request=request, purpose=AccessLink.Purpose.STATUS)
    assert client.get(reverse("privacy_center:download", args=[token])).status_code == 404


def test_link_of_another_request_does_not_reach_this_copy(answered, officer, smtp_inbox, customer):
    """A download link bound to another request never opens this request's copy."""
    _released(answered, officer, smtp_inbox)
    _, export = answered
    from shop.models import Customer

    other = Customer.objects.create(email="bob@example.org", full_name="Bob Other")
    other_request = _center_request(other, "bob@example.org")
    other_link, _ = access_link_create(request=other_request, purpose=AccessLink.Purpose.DOWNLOAD)
    with pytest.raises(ComplianceRefused, match="does not lead to a copy"):
        export_download(export=export, actor=None, link=other_link)
    with pytest.raises(DeliveryRefused, match="not been released"):
        delivery_download(link=other_link, code="000000")
    assert SubjectExport.objects.get(pk=export.pk).downloads == 0


def test_download_asks_for_a_fresh_emailed_code(answered, officer, smtp_inbox, client):
    """The page emails a code; with it the ZIP streams; the same code again is refused."""
    token = _released(answered, officer, smtp_inbox)
    url = reverse("privacy_center:download", args=[token])
    sent = client.post(url, {"action": "send"})
    assert sent.status_code == 200 and b"id_code" in sent.content
    code = _code(smtp_inbox.messages[-1])
    response = client.post(url, {"action": "download", "code": code})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(BytesIO(b"".join(response.streaming_content))) as archive:
        assert "manifest.json" in archive.namelist()
    reused = client.post(url, {"action": "download", "code": code})
    assert reused.status_code == 400 and b"was used already" in reused.content


def test_wrong_code_is_refused_and_counts_nothing(answered, officer, smtp_inbox, client):
    """A wrong code streams nothing, counts no download and leaves the request open."""
    token = _released(answered, officer, smtp_inbox)
    url = reverse("privacy_center:download", args=[token])
    client.post(url, {"action": "send"})
    code = _code(smtp_inbox.messages[-1])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = client.post(url, {"action": "download", "code": wrong})
    assert response.status_code == 400 and b"not right" in response.content
    assert SubjectExport.objects.get().downloads == 0
    assert SubjectRequest.objects.get().state == SubjectRequest.State.IN_PROGRESS


def test_verification_code_does_not_open_the_download(answered, officer, smtp_inbox):
    """A code issued to verify the request is not a download code."""
    from compliance.services.verification import challenge_issue

    request, _ = answered
    link = delivery_link(_released(answered, officer, smtp_inbox))
    _, code = challenge_issue(request=request)
    with pytest.raises(DeliveryRefused):
        delivery_download(link=link, code=code)


def test_first_download_completes_the_request_as_downloaded(answered, officer, smtp_inbox):
    """Each download is counted and ledgered; the first completes the request."""
    request, export = answered
    link = delivery_link(_released(answered, officer, smtp_inbox))
    for expected in (1, 2):
        delivery_code_send(link=link)
        _, handle = delivery_download(link=link, code=_code(smtp_inbox.messages[-1]))
        handle.close()
        export.refresh_from_db()
        assert export.downloads == expected
        # The next code may be sent only a minute later.
        link.request.challenges.update(sent_at=timezone.now() - timedelta(minutes=2))
    request.refresh_from_db()
    assert request.state == SubjectRequest.State.COMPLETED
    assert request.outcome == SubjectRequest.Outcome.DOWNLOADED
    downloads = LedgerEntry.objects.filter(action=LedgerAction.EXPORT_DOWNLOAD)
    assert [entry.details["by"] for entry in downloads] == ["subject", "subject"]
    assert downloads.first().actor is None


def test_unused_link_completes_the_request_as_expired_without_download(
    answered, officer, smtp_inbox
):
    """At the link's expiry the copy is deleted and the request completes, unused."""
    from compliance.services import export_path

    request, export = answered
    _released(answered, officer, smtp_inbox)
    export.refresh_from_db()
    path = export_path(export)
    assert exports_expire(now=export.expires_at + timedelta(seconds=1)) == 1
    request.refresh_from_db()
    assert request.state == SubjectRequest.State.COMPLETED
    assert request.outcome == SubjectRequest.Outcome.EXPIRED
    assert not path.exists()


def test_expiry_after_a_download_keeps_the_outcome_downloaded(answered, officer, smtp_inbox):
    """A copy downloaded once, then expired, leaves the request "downloaded"."""
    request, export = answered
    link = delivery_link(_released(answered, officer, smtp_inbox))
    delivery_code_send(link=link)
    delivery_download(link=link, code=_code(smtp_inbox.messages[-1]))[1].close()
    export.refresh_from_db()
    exports_expire(now=export.expires_at + timedelta(seconds=1))
    request.refresh_from_db()
    assert request.outcome == SubjectRequest.Outcome.DOWNLOADED


def test_download_page_and_its_code_email_speak_german(answered, officer, smtp_inbox, client):
    """With a German browser the page and the download code's email are in German."""
    token = _released(answered, officer, smtp_inbox)
    url = reverse("privacy_center:download", args=[token])
    page = client.get(url, headers={"accept-language": "de"})
    assert "Ihre Kopie herunterladen" in page.content.decode()
    client.post(url, {"action": "send"}, headers={"accept-language": "de"})
    assert "Download-Seite" in smtp_inbox.messages[-1].get_body(("plain",)).get_content()


def test_copy_of_a_request_rejected_after_release_is_not_downloaded(answered, officer, smtp_inbox):
    """Rejecting the request after its release closes the download."""
    from compliance.services import request_reject

    request, _ = answered
    link = delivery_link(_released(answered, officer, smtp_inbox))
    request_reject(request=request, actor=officer, reason="Sent to the wrong person")
    delivery_code_send(link=link)
    link.request.refresh_from_db()
    with pytest.raises(DeliveryRefused, match="no longer available"):
        delivery_download(link=link, code=_code(smtp_inbox.messages[-1]))
    assert SubjectExport.objects.get().downloads == 0


def test_two_officers_releasing_at_once_send_one_link(postgres, answered, officer, smtp_inbox):
    """Two connections release the same copy at the same moment (PostgreSQL): one sends
    the link, the other waits for it and changes nothing."""
    import threading

    from django.db import connections

    from tests.conftest import _member

    _, export = answered
    second = _member("officer2", "Privacy officer")
    start, results, errors = threading.Barrier(2), [], []

    def release(actor):
        try:
            start.wait()
            results.append(export_release(export=export, actor=actor, absolute_url=URL))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=release, args=(a,)) for a in (officer, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(result.released for result in results) == [False, True]
    assert AccessLink.objects.filter(purpose=AccessLink.Purpose.DOWNLOAD).count() == 1
    assert len(smtp_inbox.messages) == 1
    releases = LedgerEntry.objects.filter(
        action=LedgerAction.REQUEST, details__transition="release"
    )
    assert releases.count() == 1
