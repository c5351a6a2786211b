"""Emailed codes ("challenges"): a requester proves they read the mailbox they gave.

A code is 6 random digits, stored only as an HMAC keyed from SECRET_KEY and compared in
constant time. It expires after PRIVACY_CODE_MINUTES (10), allows MAX_TRIES (5) wrong
entries, and is consumed by the right one: it never works twice. Resending (after
RESEND_SECONDS) replaces the code on the same challenge of the same request; it never
files a second request.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .. import config
from ..models import Challenge, SubjectRequest

__all__ = [
    "MAX_TRIES",
    "RESEND_SECONDS",
    "ChallengeResult",
    "challenge_check",
    "challenge_issue",
    "code_digest",
]

MAX_TRIES = 5
RESEND_SECONDS = 60
_SALT = "compliance.challenge"


def code_digest(code: str, *, challenge_salt: str = "") -> str:
    """The keyed hash of `code` (HMAC-SHA256, key derived from SECRET_KEY)."""
    return salted_hmac(_SALT + challenge_salt, code, algorithm="sha256").hexdigest()


def _new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def challenge_issue(
    *, request: SubjectRequest, purpose: str = Challenge.Purpose.VERIFY
) -> tuple[Challenge, str | None]:
    """Issue (or, on resend, replace) the code of `request` for `purpose`.

    Returns the challenge and the new code to email, or None as the code when the last one
    was sent less than RESEND_SECONDS ago (nothing to send yet).
    """
    now = timezone.now()
    with transaction.atomic():
        challenge = (
            Challenge.objects.select_for_update()
            .filter(request=request, purpose=purpose, consumed_at__isnull=True)
            .order_by("-pk")
            .first()
        )
        if challenge and (now - challenge.sent_at).total_seconds() < RESEND_SECONDS:
            return challenge, None
        code = _new_code()
        if challenge is None:
            challenge = Challenge(request=request, purpose=purpose)
        challenge.code_hash = code_digest(code, challenge_salt=str(request.pk))
        challenge.sent_at = now
        challenge.expires_at = now + timedelta(minutes=config.code_minutes())
        challenge.tries = 0
        challenge.save()
    return challenge, code


@dataclass(frozen=True)
class ChallengeResult:
    ok: bool
    reason: str = ""  # "wrong", "expired", "used", "locked" or "none"
    tries_left: int = 0


def challenge_check(
    *, request: SubjectRequest, code: str, purpose: str = Challenge.Purpose.VERIFY
) -> ChallengeResult:
    """Compare `code` with the request's open challenge in constant time; consume it when
    right, count a try when wrong. After MAX_TRIES wrong codes only a resend helps."""
    code = (code or "").strip().replace(" ", "")
    now = timezone.now()
    with transaction.atomic():
        challenge = (
            Challenge.objects.select_for_update()
            .filter(request=request, purpose=purpose)
            .order_by("-pk")
            .first()
        )
        # Hash even without a challenge, so both paths do the same work.
        given = code_digest(code, challenge_salt=str(request.pk))
        if challenge is None:
            return ChallengeResult(False, "none")
        if challenge.consumed_at is not None:
            return ChallengeResult(False, "used")
        if challenge.tries >= MAX_TRIES:
            return ChallengeResult(False, "locked")
        if challenge.expires_at <= now:
            return ChallengeResult(False, "expired")
        if not hmac.compare_digest(given, challenge.code_hash):
            challenge.tries += 1
            challenge.save(update_fields=["tries"])
            left = MAX_TRIES - challenge.tries
            return ChallengeResult(False, "locked" if left <= 0 else "wrong", left)
        challenge.consumed_at = now
        challenge.save(update_fields=["consumed_at"])
    return ChallengeResult(True)
