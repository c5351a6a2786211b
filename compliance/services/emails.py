"""Emails to requesters: one call renders a kind's templates and sends them.

`email_send(request=…, kind="code", context={…})` renders
templates/privacy/email/<kind>_subject.txt, <kind>.txt and <kind>.html in the request's
language, records on the request the kind, a keyed digest of the recipient and the sha256
of the content (never the address or the body), and hands the message to a Celery task
with retries once the transaction commits (in-process without a broker). A subject line
never names the person.
"""

from __future__ import annotations

import hashlib

from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac

from ..models import RequestEmail, SubjectRequest

__all__ = ["EMAIL_KINDS", "email_deliver_now", "email_send", "recipient_digest"]

# The kinds with templates; another app adds its kind here and its three templates.
EMAIL_KINDS = [
    "code",
    "received",
    "rejected",
    "extended",
    "completed",
    "copy_ready",  # delivery.export_release
    "message",  # messages.request_message_send
]


def recipient_digest(address: str) -> str:
    """A keyed digest of an address: equal addresses match, the address cannot be read."""
    return salted_hmac("compliance.email", address.strip().lower(), algorithm="sha256").hexdigest()


def email_send(
    *,
    request: SubjectRequest,
    kind: str,
    context: dict | None = None,
    to: str | None = None,
    language: str | None = None,
) -> RequestEmail:
    """Render the `kind` email about `request` and queue it to `to` (default the address the
    requester gave). Returns the record of it."""
    if kind not in EMAIL_KINDS:
        raise ValueError(f"Unknown email kind {kind!r}: choose one of {', '.join(EMAIL_KINDS)}.")
    address = to or request.contact_email
    if not address:
        raise ValueError(f"{request} has no contact address to write to.")
    values = {"request": request, **(context or {})}
    with translation.override(language or translation.get_language() or "en"):
        subject = " ".join(render_to_string(f"privacy/email/{kind}_subject.txt", values).split())
        text = render_to_string(f"privacy/email/{kind}.txt", values)
        html = render_to_string(f"privacy/email/{kind}.html", values)
    content = hashlib.sha256("\0".join((subject, text, html)).encode()).hexdigest()
    record = RequestEmail.objects.create(
        request=request,
        kind=kind,
        recipient_digest=recipient_digest(address),
        content_sha256=content,
    )
    from ..tasks import email_deliver  # tasks sit above services: they call this module

    message = {"subject": subject, "text": text, "html": html, "to": address}
    transaction.on_commit(lambda: email_deliver.delay(record.pk, message))
    return record


def email_deliver_now(*, email_id: int, message: dict) -> None:
    """Send one queued email (`message` as `email_send` rendered it) and mark it sent; a
    failure propagates so the task retries it."""
    mail = EmailMultiAlternatives(
        subject=message["subject"], body=message["text"], to=[message["to"]]
    )
    mail.attach_alternative(message["html"], "text/html")
    mail.send()
    RequestEmail.objects.filter(pk=email_id).update(
        status=RequestEmail.Status.SENT, sent_at=timezone.now(), error=""
    )
