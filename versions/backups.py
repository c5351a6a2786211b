"""Database backups: the file, its manifest, and the environment of the PostgreSQL tools.

A backup is one file under BACKUP_DIR (``<UTC stamp>-<tier>.dump``, PostgreSQL custom
format, or ``.sqlite3``, a SQLite database) and its manifest beside it
(``<file>.manifest.json``): format, vendor, database, server and dump-tool versions,
migration state, sha256, size, per-table row counts, tier and time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["BackupError", "MANIFEST_FORMAT", "manifest_path", "manifest_read", "pg_environ"]

MANIFEST_FORMAT = 1
MANIFEST_SUFFIX = ".manifest.json"


class BackupError(Exception):
    """A backup cannot be made, read, verified or restored; the message says why and what to
    do. Commands show it as an error, never a traceback."""


def manifest_path(path: Path) -> Path:
    """The manifest written beside the backup file at `path`."""
    path = Path(path)
    return path.with_name(path.name + MANIFEST_SUFFIX)


def manifest_read(path: Path) -> dict:
    """The manifest of the backup file at `path`; BackupError when the file or its manifest
    is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"No backup file at {path}: give the path of a backup file.")
    source = manifest_path(path)
    try:
        manifest = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(
            f"{path.name} has no manifest ({source.name} is missing): it was not written by "
            "the backup command, or its manifest was lost; it cannot be verified."
        ) from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"The manifest {source.name} cannot be read: {exc}.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BackupError(
            f"The manifest {source.name} is not a backup manifest of format {MANIFEST_FORMAT}."
        )
    return manifest


def pg_environ(settings_dict: dict) -> dict[str, str]:
    """The environment for pg_dump, pg_restore and psql to reach the database of a Django
    connection's `settings_dict` (libpq variables: no password on a command line)."""
    env = dict(os.environ)
    for variable, key in [
        ("PGHOST", "HOST"),
        ("PGPORT", "PORT"),
        ("PGUSER", "USER"),
        ("PGPASSWORD", "PASSWORD"),
        ("PGDATABASE", "NAME"),
    ]:
        value = settings_dict.get(key)
        if value:
            env[variable] = str(value)
    sslmode = (settings_dict.get("OPTIONS") or {}).get("sslmode")
    if sslmode:
        env["PGSSLMODE"] = sslmode
    return env
