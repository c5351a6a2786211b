"""Messages an officer writes to the person about their request: stored, emailed to the
address the person gave, and shown on their status page in the privacy center."""

from __future__ import annotations

from django.db import transaction

from retention.services import _require
from versions.context import change_context

from ..models import RequestMessage, SubjectRequest
from .common import ComplianceRefused
from .emails import email_send
from .requests import request_ledger

__all__ = ["MESSAGE_MAX_LENGTH", "request_message_send"]

MESSAGE_MAX_LENGTH = 5000


def request_message_send(
    *, request: SubjectRequest, actor, body: str, reason: str = ""
) -> RequestMessage:
    """Store `body` as a message to the requester of `request`, email it to them once the
    transaction commits, and write the request's "message" step in the ledger (its length,
    never its text)."""
    _require(actor, SubjectRequest, "change")
    body = (body or "").strip()
    if not body:
        raise ComplianceRefused("Write the message to the requester: it is empty.")
    if len(body) > MESSAGE_MAX_LENGTH:
        raise ComplianceRefused(
            f"The message is {len(body)} characters long: keep it under {MESSAGE_MAX_LENGTH}."
        )
    with change_context(user=actor, reason=reason), transaction.atomic():
        locked = SubjectRequest.objects.select_for_update().get(pk=request.pk)
        if not locked.contact_email:
            raise ComplianceRefused(
                f"{locked} has no contact address (it was recorded by an officer): write to "
                "the person through the channel the request came from."
            )
        message = RequestMessage.objects.create(request=locked, body=body, author=actor)
        request_ledger(
            locked,
            transition="message",
            previous=locked.state,
            actor=actor,
            reason=reason or f"Message #{message.pk} to the requester",
            message=message.pk,
            characters=len(body),
        )
        email_send(
            request=locked,
            kind="message",
            context={"message": message},
            language=locked.language or "en",
        )
    return message
