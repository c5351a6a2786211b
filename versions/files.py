"""Files the application writes and must be able to trust later (exports, purge archives,
backups, the ledger head): their sha256, atomic replacement and durable renames; and the
database's COPY output read in blocks to stream into them."""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import nullcontext
from pathlib import Path

__all__ = ["copy_blocks", "file_sha256", "fsync_dir", "write_atomically"]

COPY_BLOCK = 1 << 20  # bytes of COPY output gathered per write


def file_sha256(path: Path) -> str:
    """The hex sha256 of the file at `path`, read in blocks of 1 MiB."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(directory: Path) -> None:
    """Make renames in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, text: str, *, encoding: str = "utf-8") -> None:
    """Replace `path` with `text` in one step: a reader sees the old file or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding=encoding) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def copy_blocks(cursor, sql: str, params: list):
    """The output of ``COPY … TO STDOUT`` (a psycopg 3 cursor) in blocks of about
    COPY_BLOCK bytes of whole lines; COPY hands it over a row at a time."""
    pending, size = [], 0
    # Django's debug cursor (DEBUG=true) wraps copy() without parameters: COPY runs on the
    # driver's cursor, and the debug cursor still logs the statement.
    raw = getattr(cursor, "cursor", cursor)
    debug = getattr(cursor, "debug_sql", None)
    logged = debug(sql, params) if debug is not None else nullcontext()
    with logged, raw.copy(sql, params) as copy:
        for data in copy:
            pending.append(data)
            size += len(data)
            if size >= COPY_BLOCK:
                yield b"".join(pending)
                pending, size = [], 0
    if pending:
        yield b"".join(pending)
