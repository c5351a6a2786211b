"""Messages to the requester: stored, emailed, shown on their status page, never ledgered."""

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from compliance.models import AccessLink, RequestMessage, SubjectRequest
from compliance.services import ComplianceRefused, request_create
from compliance.services.links import access_link_create
from compliance.services.messages import MESSAGE_MAX_LENGTH, request_message_send
from versions.models import LedgerAction, LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def center_request(customer):
    request = request_create(subject=customer, kind="access", jurisdiction="gdpr", actor=None)
    SubjectRequest.objects.filter(pk=request.pk).update(
        contact_email="ada@example.org", channel=SubjectRequest.Channel.CENTER
    )
    request.refresh_from_db()
    return request


def test_message_is_stored_emailed_and_shown_on_the_status_page(
    center_request, officer, smtp_inbox, client
):
    """The person reads the message in their email and on their status page."""
    request_message_send(request=center_request, actor=officer, body="Which shop did you use?")
    message = RequestMessage.objects.get()
    assert message.author == officer and message.request == center_request
    (email,) = smtp_inbox.messages
    assert email["To"] == "ada@example.org"
    assert "Which shop did you use?" in email.get_body(("plain",)).get_content()
    _, token = access_link_create(request=center_request, purpose=AccessLink.Purpose.STATUS)
    page = client.get(reverse("privacy_center:status", args=[token])).content.decode()
    assert "Messages from us" in page and "Which shop did you use?" in page


def test_ledger_records_the_message_without_its_text(center_request, officer, smtp_inbox):
    """The ledger step names the message and its length, not what it says."""
    request_message_send(request=center_request, actor=officer, body="Your order 4711 is gone.")
    entry = LedgerEntry.objects.filter(action=LedgerAction.REQUEST).order_by("id").last()
    assert entry.details["transition"] == "message"
    assert entry.details["characters"] == len("Your order 4711 is gone.")
    assert "4711" not in str(entry.details) + entry.reason + entry.target


def test_message_refusals_change_nothing(center_request, officer, auditor, smtp_inbox):
    """Empty, too long, or from an auditor: refused, nothing stored or sent."""
    with pytest.raises(ComplianceRefused, match="empty"):
        request_message_send(request=center_request, actor=officer, body="   ")
    with pytest.raises(ComplianceRefused, match="keep it under"):
        request_message_send(
            request=center_request, actor=officer, body="x" * (MESSAGE_MAX_LENGTH + 1)
        )
    with pytest.raises(PermissionDenied):
        request_message_send(request=center_request, actor=auditor, body="Hello")
    assert not RequestMessage.objects.exists() and not smtp_inbox.messages


def test_message_email_is_in_the_requesters_language(center_request, officer, smtp_inbox):
    """A person who asked in German gets the message's frame in German."""
    SubjectRequest.objects.filter(pk=center_request.pk).update(language="de")
    center_request.refresh_from_db()
    request_message_send(request=center_request, actor=officer, body="Hallo")
    (email,) = smtp_inbox.messages
    assert email["Subject"] == "Eine Nachricht zu Ihrer Anfrage"
