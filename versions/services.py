"""Ledger services: append an entry, verify the chain."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from . import config
from .context import current
from .models import LedgerAction, LedgerEntry

__all__ = ["GENESIS", "LedgerReport", "ledger_append", "ledger_verify", "entry_hash"]

GENESIS = "0" * 64
_HASH_SALT = "versions.ledger"
_LOCK_KEY = 0x1ED6E7  # advisory lock serialising appends on PostgreSQL
_APPEND_ATTEMPTS = 5


def entry_hash(entry: LedgerEntry, prev_hash: str) -> str:
    """The keyed hash of an entry's content chained to its predecessor's hash.

    The id is not hashed: each entry's `prev_hash` already fixes its place in the chain.
    """
    payload = json.dumps(
        {
            "created_at": entry.created_at.isoformat(),
            "action": entry.action,
            "actor_id": entry.actor_id,
            "actor_label": entry.actor_label,
            "channel": entry.channel,
            "reason": entry.reason,
            "target": entry.target,
            "counts": entry.counts,
            "details": entry.details,
            "request_id": entry.request_id,
            "task_id": entry.task_id,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return salted_hmac(
        _HASH_SALT, payload, secret=config.ledger_secret(), algorithm="sha256"
    ).hexdigest()


def ledger_append(
    *,
    action: LedgerAction | str,
    actor,
    reason: str,
    target: str = "",
    counts: dict | None = None,
    details: dict | None = None,
) -> LedgerEntry:
    """Append one entry, chained to the current head, inside the caller's transaction.

    `actor` is the user who acts (None for the system) and `reason` why; the channel, IP and
    request or task id come from the change context. `counts` and `details` must not hold
    personal data (ids, model names, numbers).
    """
    if action not in LedgerAction.values:
        raise ValueError(f"unknown ledger action {action!r}")
    ctx = current()
    for attempt in range(_APPEND_ATTEMPTS):
        try:
            with transaction.atomic():
                return _append(action, actor, reason, ctx, target, counts or {}, details or {})
        except IntegrityError:
            # Another writer took the head between our read and insert (SQLite); retry.
            if attempt == _APPEND_ATTEMPTS - 1:
                raise


def _append(action, actor, reason, ctx, target, counts, details) -> LedgerEntry:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
    head = LedgerEntry.objects.order_by("-id").values_list("hash", flat=True).first()
    prev_hash = head or GENESIS
    entry = LedgerEntry(
        created_at=timezone.now(),
        action=str(action),
        actor=actor,
        actor_label=actor.get_username() if actor is not None else "system",
        channel=ctx.channel,
        reason=reason,
        target=target,
        counts=counts,
        details=details,
        request_id=ctx.request_id,
        task_id=ctx.task_id,
        prev_hash=prev_hash,
    )
    entry.hash = entry_hash(entry, prev_hash)
    entry.save()
    return entry


@dataclass(frozen=True)
class LedgerReport:
    """What `ledger_verify` found: entries checked, the head, the first broken entry (if one
    entry is to blame) and the problem, empty when the chain is intact."""

    checked: int
    head: str
    broken_id: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def ledger_verify(*, expect_head: str = "", chunk_size: int = 2000) -> LedgerReport:
    """Recompute the chain in id order and stop at the first entry that does not fit.

    `expect_head` is a head hash recorded earlier (outside the database): it must still be
    in the chain, which catches the newest entries having been deleted.
    """
    prev_hash = GENESIS
    checked = 0
    seen_expected = not expect_head
    entries = LedgerEntry.objects.order_by("id").iterator(chunk_size=chunk_size)
    for entry in entries:
        if entry.prev_hash != prev_hash:
            return LedgerReport(
                checked,
                prev_hash,
                entry.pk,
                "its link to the previous entry is broken: an entry before it was "
                "deleted, altered or inserted",
            )
        if entry.hash != entry_hash(entry, prev_hash):
            return LedgerReport(
                checked,
                prev_hash,
                entry.pk,
                "its content does not match its hash: the entry was altered or inserted "
                "outside the application",
            )
        prev_hash = entry.hash
        seen_expected = seen_expected or entry.hash == expect_head
        checked += 1
    if not seen_expected:
        return LedgerReport(
            checked,
            prev_hash,
            None,
            f"the recorded head {expect_head} is no longer in the chain: entries were deleted "
            "from its end",
        )
    return LedgerReport(checked, prev_hash)
