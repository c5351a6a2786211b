"""The ledger: append an entry, verify the chain; both record the head they leave."""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from functools import partial
from itertools import chain

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from . import config
from .anchor import anchor_append, anchor_lines
from .context import current
from .models import LedgerAction, LedgerCheckpoint, LedgerEntry

__all__ = [
    "GENESIS",
    "HEAD_PATTERN",
    "LedgerReport",
    "canonical_json",
    "entry_hash",
    "key_id",
    "ledger_append",
    "ledger_verify",
]

GENESIS = "0" * 64
HEAD_PATTERN = re.compile(r"[0-9a-f]{64}")
_HASH_SALT = "versions.ledger"
_CHECKPOINT_SALT = "versions.ledger.checkpoint"
_KEY_ID_SALT = "versions.ledger.key-id"
_LOCK_KEY = 0x1ED6E7  # advisory lock serialising appends on PostgreSQL
_APPEND_ATTEMPTS = 5

# Operators ship this logger's lines elsewhere: each names the head after a commit.
logger = logging.getLogger("versions.ledger")


class _UnknownKey(LookupError):
    pass


def key_id(secret: str) -> str:
    """The public fingerprint of a ledger key, stored with every entry it signs."""
    return salted_hmac(_KEY_ID_SALT, "key id", secret=secret, algorithm="sha256").hexdigest()[:16]


def _keys() -> dict[str, str]:
    """Key id -> key, for LEDGER_SECRET and every key in LEDGER_PREVIOUS_SECRETS."""
    keys = {key_id(secret): secret for secret in config.ledger_previous_secrets()}
    current_secret = config.ledger_secret()
    keys[key_id(current_secret)] = current_secret
    return keys


def _mac(salt: str, payload: str, secret: str) -> str:
    return salted_hmac(salt, payload, secret=secret, algorithm="sha256").hexdigest()


def canonical_json(value, *, name: str = "value"):
    """`value` in the form that is stored and hashed, identical after any database's JSON
    round trip; ValueError for what JSON or PostgreSQL cannot hold.

    PostgreSQL keeps JSON numbers as decimals: `1e16` comes back as the integer
    10000000000000000 and `-0.0` as `0.0`. A float with an integral value is therefore
    stored as that integer; other floats come back as the same float. NaN, infinities,
    NUL characters and lone surrogates are refused, as are keys that are not strings.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} is {value!r}: JSON has no NaN or infinity")
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        return _text(value, name)
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{name} has the key {key!r}: JSON keys are strings")
            result[_text(key, f"a key of {name}")] = canonical_json(item, name=f"{name}[{key!r}]")
        return result
    if isinstance(value, list | tuple):
        return [canonical_json(item, name=f"{name}[{i}]") for i, item in enumerate(value)]
    raise ValueError(
        f"{name} is a {type(value).__name__}: give str, int, float, bool, None, list or dict"
    )


def _text(value: str, name: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{name} contains a NUL character, which PostgreSQL cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} contains a lone surrogate, which is not Unicode text") from None
    return value


def entry_hash(entry: LedgerEntry, prev_hash: str) -> str:
    """The keyed hash of an entry's content chained to its predecessor's hash.

    The key is the one whose id the entry carries (LEDGER_SECRET or a previous one). The
    sequence number is hashed (the id, which a rolled-back append skips, is not): a gap in
    it is a missing entry. Entries from before sequence numbers were hashed without one.
    """
    secret = _keys().get(entry.key_id)
    if secret is None:
        raise _UnknownKey(entry.key_id)
    return _entry_hash(entry, prev_hash, secret)


def _entry_hash(entry: LedgerEntry, prev_hash: str, secret: str) -> str:
    content = {
        "created_at": entry.created_at.isoformat(),
        "action": entry.action,
        "actor_id": entry.actor_id,
        "actor_label": entry.actor_label,
        "channel": entry.channel,
        "reason": entry.reason,
        "target": entry.target,
        "counts": canonical_json(entry.counts, name="counts"),
        "details": canonical_json(entry.details, name="details"),
        "request_id": entry.request_id,
        "task_id": entry.task_id,
        "key_id": entry.key_id,
        "prev_hash": prev_hash,
    }
    if entry.seq is not None:
        content["seq"] = entry.seq
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return _mac(_HASH_SALT, payload, secret)


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
    personal data (ids, model names, numbers); they are stored in canonical form (see
    `canonical_json`). The entry's sequence number is the previous entry's plus one, under
    the append lock. The new head is recorded as a checkpoint in the same transaction, and
    logged and anchored in LEDGER_HEAD_FILE once the transaction commits.
    """
    if action not in LedgerAction.values:
        raise ValueError(f"unknown ledger action {action!r}")
    counts = canonical_json(counts or {}, name="counts")
    details = canonical_json(details or {}, name="details")
    reason, target = _text(reason, "reason"), _text(target, "target")
    secret = config.ledger_secret()
    ctx = current()
    for attempt in range(_APPEND_ATTEMPTS):
        try:
            with transaction.atomic():
                entry = _append(action, actor, reason, ctx, target, counts, details, secret)
                checkpoint = _record_head(
                    LedgerCheckpoint.Kind.APPEND, entry.pk, entry.hash, actor, "", ctx, secret
                )
            break
        except IntegrityError:
            # Another writer took the head between our read and insert (SQLite); retry.
            if attempt == _APPEND_ATTEMPTS - 1:
                raise
    transaction.on_commit(partial(_publish, checkpoint, entry.seq))
    return entry


def _append(action, actor, reason, ctx, target, counts, details, secret) -> LedgerEntry:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
    head = LedgerEntry.objects.order_by("-id").values_list("hash", "seq").first()
    prev_hash, seq = head or (GENESIS, 0)
    if head is not None and seq is None:  # the newest entry predates sequence numbers
        seq = LedgerEntry.objects.count()
    entry = LedgerEntry(
        created_at=timezone.now(),
        action=str(action),
        actor=actor,
        actor_label=_label(actor),
        channel=ctx.channel,
        reason=reason,
        target=target,
        counts=counts,
        details=details,
        request_id=ctx.request_id,
        task_id=ctx.task_id,
        key_id=key_id(secret),
        seq=seq + 1,
        prev_hash=prev_hash,
    )
    entry.hash = _entry_hash(entry, prev_hash, secret)
    entry.save()
    return entry


def _label(actor) -> str:
    return actor.get_username() if actor is not None else "system"


def _checkpoint_mac(entry_id: int, head: str, secret: str) -> str:
    return _mac(_CHECKPOINT_SALT, f"{entry_id}:{head}", secret)


def _record_head(kind, entry_id, head, actor, reason, ctx, secret) -> LedgerCheckpoint:
    return LedgerCheckpoint.objects.create(
        created_at=timezone.now(),
        kind=kind,
        entry_id=entry_id,
        head=head,
        key_id=key_id(secret),
        mac=_checkpoint_mac(entry_id, head, secret),
        actor_label=_label(actor),
        channel=ctx.channel,
        reason=reason,
    )


def _publish(checkpoint: LedgerCheckpoint, seq: int) -> None:
    """After commit: log the head, and anchor it in LEDGER_HEAD_FILE if one is set."""
    line = f"entry={checkpoint.entry_id} head={checkpoint.head} seq={seq}"
    path = config.ledger_head_file()
    if path is not None and seq > 0:
        try:
            line = (
                anchor_append(
                    path,
                    entry=checkpoint.entry_id,
                    head=checkpoint.head,
                    seq=seq,
                    key_id=checkpoint.key_id,
                    secret=config.ledger_secret(),
                )
                or line
            )
        except OSError as exc:
            # The transaction has committed; failing now would only hide that from the caller.
            logger.error("could not anchor the ledger head in %s: %s", path, exc)
    logger.info("ledger head %s", line)


@dataclass(frozen=True)
class LedgerReport:
    """What `ledger_verify` found: entries checked, the head, the first broken entry (if one
    entry is to blame) and the problem, empty when the chain is intact."""

    checked: int
    head: str
    broken_id: int | None = None
    problem: str = ""
    head_id: int = 0

    @property
    def ok(self) -> bool:
        return not self.problem


@dataclass(frozen=True)
class _Reference:
    """A head recorded earlier that the chain must still contain."""

    head: str
    description: str


class _Broken(Exception):
    """The walk stops: `problem`, at entry `entry_id` if one entry is to blame."""

    def __init__(self, problem: str, entry_id: int | None = None):
        super().__init__(problem)
        self.problem, self.entry_id = problem, entry_id


def ledger_verify(
    *, actor, reason: str, expect_head: str = "", chunk_size: int = 2000
) -> LedgerReport:
    """Recompute the chain in id order and stop at the first entry that does not fit.

    Each entry must link to the one before, match its keyed hash and carry the next
    sequence number (a gap is a missing entry). The heads recorded earlier must still be
    in the chain: the newest checkpoint, `expect_head` (a hash kept outside the database),
    and every head anchored in LEDGER_HEAD_FILE, each at its sequence number — otherwise
    entries were removed from the end (deleted, truncated, the database rolled back), even
    if others were appended since. Every checkpoint's MAC and every anchor line is checked.

    A verification that passes records the head it verified (a checkpoint, then a log line
    and the anchor after commit): that is a write, so like every state-changing service it
    takes the `actor` who verifies (None for the system) and the `reason`.
    """
    expect_head = expect_head.strip().lower()
    if expect_head and not HEAD_PATTERN.fullmatch(expect_head):
        raise ValueError(f"expected head {expect_head!r} is not a hash of 64 hex digits")
    keys = _keys()
    # Heads recorded before the walk starts: any entry they name is visible to the walk.
    references, reference_problem = _references(keys, expect_head)
    path = config.ledger_head_file()
    anchored = anchor_lines(path, keys) if path is not None else iter(())
    walk = _Walk(path, anchored)
    try:
        walk.run(keys, references, chunk_size)
    except _Broken as broken:
        return LedgerReport(
            walk.checked, walk.prev_hash, broken.entry_id, broken.problem, walk.head_id
        )
    if reference_problem:  # reported after the chain's own problems, which say more
        return LedgerReport(walk.checked, walk.prev_hash, None, reference_problem, walk.head_id)
    for ref in references:
        if ref.head not in walk.found:
            return LedgerReport(
                walk.checked,
                walk.prev_hash,
                None,
                f"{ref.description} is no longer in the chain, which ends at entry "
                f"#{walk.head_id}: {_REMOVED}",
                walk.head_id,
            )
    secret = config.ledger_secret()
    with transaction.atomic():
        checkpoint = _record_head(
            LedgerCheckpoint.Kind.VERIFICATION,
            walk.head_id,
            walk.prev_hash,
            actor,
            reason,
            current(),
            secret,
        )
        transaction.on_commit(partial(_publish, checkpoint, walk.checked))
    return LedgerReport(walk.checked, walk.prev_hash, head_id=walk.head_id)


_REMOVED = "entries were removed from its end (deleted, truncated, or the database rolled back)"


class _Walk:
    """One pass over the chain in id order, with the anchored heads met on the way."""

    def __init__(self, path, anchored):
        self.path, self.anchored = path, anchored
        self.prev_hash, self.head_id, self.checked = GENESIS, 0, 0
        self.found: set[str] = set()
        self.pending = None  # the next anchored head, not yet reached

    def _next_anchor(self):
        try:
            self.pending = next(self.anchored, None)
        except (OSError, ValueError) as exc:
            raise _Broken(f"the anchor file {self.path} cannot be trusted: {exc}") from None

    def run(self, keys, references, chunk_size):
        wanted = {ref.head for ref in references}
        self.found = {head for head in wanted if head == GENESIS}
        self._next_anchor()
        legacy = self.pending is not None and self.pending.seq is None
        if legacy:  # a head file from before anchors were chained: a head like a checkpoint
            wanted.add(self.pending.head)
            references.append(
                _Reference(
                    self.pending.head,
                    f"the head recorded in {self.path} (entry #{self.pending.entry}, "
                    f"{self.pending.head})",
                )
            )
            self._next_anchor()
        for entry in LedgerEntry.objects.order_by("id").iterator(chunk_size=chunk_size):
            self._check(entry, keys)
            self.prev_hash, self.head_id = entry.hash, entry.pk
            self.checked += 1
            if entry.hash in wanted:
                self.found.add(entry.hash)
            self._check_anchor(entry)
        if self.pending is not None:
            last = self.pending
            while self.pending is not None:  # the furthest anchored head, every line checked
                last = self.pending
                self._next_anchor()
            first = self.checked + 1
            missing = (
                f"entry no. {first} is"
                if first == last.seq
                else f"entries no. {first} to {last.seq} are"
            )
            raise _Broken(
                f"line {last.number} of {self.path} anchored entry no. {last.seq} (entry "
                f"#{last.entry}, {last.head}) and the chain ends at no. {self.checked}: "
                f"{missing} missing from its end (deleted, truncated, or the database was "
                "rolled back)"
            )

    def _check(self, entry, keys):
        seq = self.checked + 1
        if entry.seq is not None and entry.seq != seq:
            if entry.seq > seq:
                missing = (
                    f"the entry no. {seq} before it is"
                    if entry.seq == seq + 1
                    else f"the entries no. {seq} to {entry.seq - 1} before it are"
                )
                raise _Broken(f"{missing} missing (deleted): it is no. {entry.seq}", entry.pk)
            raise _Broken(
                f"it is entry no. {entry.seq} where no. {seq} was due: an entry was inserted "
                "or renumbered outside the application",
                entry.pk,
            )
        if entry.prev_hash != self.prev_hash:
            raise _Broken(
                "its link to the previous entry is broken: an entry before it was "
                "deleted, altered or inserted",
                entry.pk,
            )
        secret = keys.get(entry.key_id)
        if secret is None:
            raise _Broken(_unknown_key(entry.key_id), entry.pk)
        if not constant_time_compare(entry.hash, _entry_hash(entry, self.prev_hash, secret)):
            raise _Broken(
                "its content does not match its hash: the entry was altered or inserted "
                "outside the application",
                entry.pk,
            )

    def _check_anchor(self, entry):
        line = self.pending
        if line is None or line.seq != self.checked:
            return
        if not constant_time_compare(line.head, entry.hash):
            raise _Broken(
                f"it is not the entry no. {line.seq} that line {line.number} of {self.path} "
                f"anchored (entry #{line.entry}, {line.head}): the chain was cut at or "
                "before it and other entries appended in place of the removed ones",
                entry.pk,
            )
        self._next_anchor()


def _unknown_key(kid: str, what: str = "entry") -> str:
    return (
        f"it was signed with key id {kid or '(none)'}, which is neither LEDGER_SECRET nor "
        "any key in LEDGER_PREVIOUS_SECRETS: add the retired key to LEDGER_PREVIOUS_SECRETS, "
        f"or the {what} was forged"
    )


def _checkpoint_problem(checkpoint: LedgerCheckpoint, keys) -> str:
    secret = keys.get(checkpoint.key_id)
    what = f"checkpoint #{checkpoint.pk} (entry #{checkpoint.entry_id})"
    if secret is None:
        return f"{what}: {_unknown_key(checkpoint.key_id, 'checkpoint')}"
    mac = _checkpoint_mac(checkpoint.entry_id, checkpoint.head, secret)
    if not constant_time_compare(checkpoint.mac, mac):
        return f"{what} does not match its MAC: it was altered or forged outside the application"
    return ""


def _references(keys, expect_head) -> tuple[list[_Reference], str]:
    """The recorded heads to look for in the chain, or a problem with one of them."""
    references = []
    # The furthest head the application recorded; read first, then every MAC is checked.
    newest = LedgerCheckpoint.objects.order_by("-entry_id", "-id").first()
    if newest is not None:
        checkpoints = LedgerCheckpoint.objects.order_by("id")
        for checkpoint in chain([newest], checkpoints.iterator(chunk_size=2000)):
            problem = _checkpoint_problem(checkpoint, keys)
            if problem:
                return [], problem
        references.append(
            _Reference(
                newest.head,
                f"the head recorded by checkpoint #{newest.pk} (entry #{newest.entry_id}, "
                f"{newest.head})",
            )
        )
    if expect_head:
        references.append(_Reference(expect_head, f"the expected head {expect_head}"))
    return references, ""
