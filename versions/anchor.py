"""The ledger's anchor outside the database: an append-only file of chained, signed heads.

After each commit the ledger's new head is appended to LEDGER_HEAD_FILE as one line,
`entry=<id> head=<hash> seq=<n> prev=<sha256 of the line before> key_id=<k> mac=<m>`, the
MAC (keyed with the ledger key) covering every field. Each line thus commits to the one
before it, so the file is a chain of its own: a line removed, altered or inserted breaks
it. Verification walks the ledger and the file side by side: every line's head must be
the entry with that sequence number. Deleting entries and then appending new ones (which
take the deleted numbers) leaves the old lines naming heads the chain no longer has.

Writers take an exclusive lock on the file, read its last line and append only a head
further than it (commits can be published out of order; a further head implies every
earlier one, since each entry's hash commits to all entries before it). The file is
written by the application and read by `verify_ledger`; keep it, or a copy shipped off the
machine, where the database's users cannot write.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.utils.crypto import constant_time_compare, salted_hmac

__all__ = ["AnchorLine", "anchor_append", "anchor_lines"]

_SALT = "versions.ledger.anchor"
_LEGACY_SALT = "versions.ledger.checkpoint"  # a head file written before lines were chained
_FIELDS = ("entry", "head", "seq", "prev", "key_id", "mac")
_HASH = re.compile(r"[0-9a-f]{64}")
_TAIL = 8192  # bytes read from the end to find the last line (lines are ~250 bytes)
GENESIS = "0" * 64


@dataclass(frozen=True)
class AnchorLine:
    """One anchored head: line number in the file, entry id, head hash, sequence number
    (None for a head file written before sequence numbers)."""

    number: int
    entry: int
    head: str
    seq: int | None


def _mac(entry: int, head: str, seq: int, prev: str, secret: str) -> str:
    payload = f"{entry}:{head}:{seq}:{prev}"
    return salted_hmac(_SALT, payload, secret=secret, algorithm="sha256").hexdigest()


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw.rstrip(b"\n")).hexdigest()


def _fields(raw: bytes) -> dict[str, str]:
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        return {}
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


def anchor_append(path: Path, *, entry: int, head: str, seq: int, key_id: str, secret: str):
    """Append the head `entry`/`head` (sequence number `seq`) to the anchor file, chained to
    its last line. Returns the line written, or None if the last line anchors `seq` or a
    further head already (a later commit published first, or entries were removed from the
    ledger's end, which verification reports)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        last = _last_line(fd)
        prev = GENESIS
        if last is not None:
            recorded = _fields(last).get("seq", "")
            if recorded.isdigit() and int(recorded) >= seq:
                return None
            prev = _digest(last)
        line = (
            f"entry={entry} head={head} seq={seq} prev={prev} key_id={key_id} "
            f"mac={_mac(entry, head, seq, prev, secret)}"
        )
        os.write(fd, (line + "\n").encode("ascii"))
        os.fsync(fd)
        return line
    finally:
        os.close(fd)  # releases the lock


def _last_line(fd: int) -> bytes | None:
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return None
    start = max(0, size - _TAIL)
    os.lseek(fd, start, os.SEEK_SET)
    tail = os.read(fd, size - start)
    lines = [line for line in tail.split(b"\n") if line.strip()]
    return lines[-1] if lines else None


def anchor_lines(path: Path, keys: dict[str, str]) -> Iterator[AnchorLine]:
    """The anchored heads in the file as it is now (lines appended meanwhile are left for
    the next verification), each checked: its MAC, its link to the line before, and a
    sequence number above the previous one. ValueError names the first line that fails.
    Nothing if there is no file."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the generator's finally
    except FileNotFoundError:
        return
    try:
        size = os.fstat(handle.fileno()).st_size
        offset, prev, seq = 0, GENESIS, 0
        for number, raw in enumerate(handle, start=1):
            offset += len(raw)
            if offset > size:
                break
            line = _checked(raw, number, prev, seq, keys)
            prev, seq = _digest(raw), line.seq or 0
            yield line
    finally:
        handle.close()


def _checked(raw: bytes, number: int, prev: str, seq: int, keys) -> AnchorLine:
    fields = _fields(raw)
    where = f"line {number}"
    if number == 1 and set(fields) == {"entry", "head", "key_id", "mac"}:
        return _legacy(fields, keys, where)
    if (
        set(fields) != set(_FIELDS)
        or not fields["entry"].isdigit()
        or not fields["seq"].isdigit()
        or not _HASH.fullmatch(fields["head"])
        or not _HASH.fullmatch(fields["prev"])
    ):
        raise ValueError(f"{where} is not an anchored head ({'=… '.join(_FIELDS)}=…)")
    secret = keys.get(fields["key_id"])
    if secret is None:
        raise ValueError(f"{where} is signed with key id {fields['key_id']}, which is not known")
    entry, line_seq = int(fields["entry"]), int(fields["seq"])
    mac = _mac(entry, fields["head"], line_seq, fields["prev"], secret)
    if not constant_time_compare(fields["mac"], mac):
        raise ValueError(f"{where} does not match its MAC: it was altered or forged")
    if fields["prev"] != prev:
        raise ValueError(
            f"{where} does not follow the line before it: lines were removed, inserted or reordered"
        )
    if line_seq <= seq:
        raise ValueError(f"{where} goes back to entry no. {line_seq} after no. {seq}")
    return AnchorLine(number, entry, fields["head"], line_seq)


def _legacy(fields, keys, where) -> AnchorLine:
    if not fields["entry"].isdigit() or not _HASH.fullmatch(fields["head"]):
        raise ValueError(f"{where} is not an anchored head")
    secret = keys.get(fields["key_id"])
    if secret is None:
        raise ValueError(f"{where} is signed with key id {fields['key_id']}, which is not known")
    payload = f"{fields['entry']}:{fields['head']}"
    mac = salted_hmac(_LEGACY_SALT, payload, secret=secret, algorithm="sha256").hexdigest()
    if not constant_time_compare(fields["mac"], mac):
        raise ValueError(f"{where} does not match its MAC: it was altered or forged")
    return AnchorLine(1, int(fields["entry"]), fields["head"], None)
