"""Access links: a random token given to a requester, bound to one request and one purpose
(follow the request, download the copy, consent preferences).

Only the token's sha256 is stored; resolving looks the hash up (an index lookup on a
value the caller cannot steer, so nothing leaks through timing). A link expires and can be
revoked. The token is the only thing the URL carries: no email, no id.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.utils import timezone

from .. import config
from ..models import AccessLink, SubjectRequest

__all__ = ["access_link_create", "access_link_resolve", "access_link_revoke", "token_hash"]


def token_hash(token: str) -> str:
    """The stored form of a link's token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def access_link_create(
    *,
    request: SubjectRequest,
    purpose: str = AccessLink.Purpose.STATUS,
    expires_at: datetime | None = None,
) -> tuple[AccessLink, str]:
    """A new link to `request` for `purpose`; returns it and its token (shown once)."""
    token = secrets.token_urlsafe(32)
    link = AccessLink.objects.create(
        request=request,
        purpose=purpose,
        token_hash=token_hash(token),
        expires_at=expires_at or timezone.now() + timedelta(days=config.link_days()),
    )
    return link, token


def access_link_resolve(*, token: str, purpose: str) -> AccessLink | None:
    """The live link with this token and purpose, else None (unknown, expired, revoked or
    made for another purpose)."""
    if not token or len(token) > 100:
        return None
    link = (
        AccessLink.objects.select_related("request")
        .filter(token_hash=token_hash(token), purpose=purpose, revoked_at__isnull=True)
        .first()
    )
    if link is None or link.expires_at <= timezone.now():
        return None
    return link


def access_link_revoke(*, link: AccessLink) -> None:
    """End `link` now."""
    AccessLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
