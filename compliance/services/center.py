"""The privacy center's flow: a person starts a request, proves their email with a code,
and follows the request through a link.

Starting does the same work whatever the address: it records a request (about the subject
who has that email, or about nobody), issues a code and emails it. So the page, and the
time it takes, say nothing about whether we know the address. Once the code is right the
request is verified (method "email code", when, from which address); a request about
nobody is then answered at once, "we hold no personal data about you", and completed.
Rate limits count per client address and per email in Django's cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext_noop

from .. import config
from ..models import AccessLink, Jurisdiction, SubjectRequest
from ..selectors import subject_by_email
from .emails import email_send, recipient_digest
from .links import access_link_create
from .requests import request_complete, request_create, request_start, request_verify
from .verification import ChallengeResult, challenge_check, challenge_issue

__all__ = [
    "NO_DATA_ANSWER",
    "CenterVerified",
    "center_rate_limited",
    "center_request_start",
    "center_request_verify",
    "center_code_resend",
]

NO_DATA_ANSWER = gettext_noop("We hold no personal data about you.")
_REASON = "Made by the requester in the privacy center"
Kind = SubjectRequest.Kind


def center_rate_limited(*, action: str, ip: str, email: str = "") -> bool:
    """Count one attempt at `action` from `ip` (and for `email`); True once either has
    made more than PRIVACY_RATE_PER_HOUR attempts this hour."""
    limit = config.rate_per_hour()
    keys = [f"privacy-rate:{action}:ip:{recipient_digest(ip or '-')}"]
    if email:
        keys.append(f"privacy-rate:{action}:email:{recipient_digest(email)}")
    over = False
    for key in keys:
        cache.add(key, 0, timeout=3600)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=3600)
            count = 1
        over = over or count > limit
    return over


def center_request_start(
    *,
    email: str,
    kind: str,
    jurisdiction: str,
    details: str = "",
    language: str = "en",
    pending: SubjectRequest | None = None,
) -> SubjectRequest:
    """Record a request from the privacy center and email its code; the same steps whether
    or not anyone here has `email`. The same request started again from the same browser
    while it waits for its code (`pending`: a reload, a second click) is that request: its
    code is sent again, at most once a minute, and no second request is filed."""
    if kind not in Kind.values or jurisdiction not in Jurisdiction.values:
        raise ValueError("Unknown kind or region.")
    if (
        pending is not None
        and pending.state == SubjectRequest.State.RECEIVED
        and (pending.contact_email, pending.kind, pending.jurisdiction)
        == (email, kind, jurisdiction)
    ):
        center_code_resend(request=pending, language=language)
        return pending
    subject = subject_by_email(email)
    with transaction.atomic():
        request = request_create(
            subject=subject,
            kind=kind,
            jurisdiction=jurisdiction,
            actor=None,
            reason=_REASON,
            channel=SubjectRequest.Channel.CENTER,
            contact_email=email,
            details=details if kind == Kind.RECTIFICATION else "",
            language=language,
        )
        _send_code(request, language)
    return request


def _send_code(request: SubjectRequest, language: str) -> bool:
    _, code = challenge_issue(request=request)
    if code is None:
        return False
    email_send(
        request=request,
        kind="code",
        context={"code": code, "minutes": config.code_minutes()},
        language=language,
    )
    return True


def center_code_resend(*, request: SubjectRequest, language: str = "en") -> bool:
    """Email a new code for `request` (same request, the code replaced); False when the
    last one went less than a minute ago or the request is no longer waiting for one."""
    if request.state != SubjectRequest.State.RECEIVED:
        return False
    with transaction.atomic():
        return _send_code(request, language)


@dataclass(frozen=True)
class CenterVerified:
    result: ChallengeResult
    request: SubjectRequest | None = None
    status_token: str = ""


def center_request_verify(
    *, request: SubjectRequest, code: str, ip: str | None, status_url, language: str = "en"
) -> CenterVerified:
    """Check `code`; when right, verify the request, give a status link (`status_url` makes
    its address from the token) and email it; a request about nobody is answered now."""
    result = challenge_check(request=request, code=code)
    if not result.ok:
        return CenterVerified(result)
    with transaction.atomic():
        request = request_verify(
            request=request,
            actor=None,
            method=SubjectRequest.VerificationMethod.EMAIL_CODE,
            note="Code emailed to the address given, entered in the privacy center.",
            reason=_REASON,
            ip=ip,
        )
        _, token = access_link_create(request=request, purpose=AccessLink.Purpose.STATUS)
        url = status_url(token)
        email_send(request=request, kind="received", context={"status_url": url}, language=language)
        if request.subject_id is None and not request.subject_key:
            request = request_start(request=request, actor=None, reason=_REASON)
            with translation.override(language):
                answer = translation.gettext(NO_DATA_ANSWER)
            request = request_complete(
                request=request, actor=None, reason=NO_DATA_ANSWER, answer=answer
            )
    return CenterVerified(result, request, token)
