"""Purge archives: the rows of a batch as JSON lines, gzipped, with their sha256, written and
synced to disk before the batch's rows are deleted."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from django.core.serializers.json import DjangoJSONEncoder

from versions.files import file_sha256, fsync_dir

__all__ = ["archive_write", "archive_verify"]


def archive_write(queryset, path: Path) -> dict:
    """Write the rows of `queryset` to `path` (JSONL.gz) and `path`.sha256; fsync both.

    Returns {"file", "sha256", "rows"}. The file appears under its final name only once
    complete (written to a temporary name, synced, then renamed).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    label = queryset.model._meta.label
    temporary = path.with_name(path.name + ".part")
    rows = 0
    with open(temporary, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped:
            for values in queryset.order_by("pk").values().iterator(chunk_size=2000):
                line = {"model": label, "fields": values}
                zipped.write(json.dumps(line, cls=DjangoJSONEncoder).encode() + b"\n")
                rows += 1
        raw.flush()
        os.fsync(raw.fileno())
    digest = file_sha256(temporary)
    os.replace(temporary, path)
    checksum = path.with_name(path.name + ".sha256")
    with open(checksum, "w") as out:
        out.write(f"{digest}  {path.name}\n")
        out.flush()
        os.fsync(out.fileno())
    fsync_dir(path.parent)
    return {"file": path.name, "sha256": digest, "rows": rows}


def archive_verify(path: Path) -> bool:
    """True when the archive's content matches the sha256 written beside it."""
    recorded = path.with_name(path.name + ".sha256").read_text().split()[0]
    return file_sha256(path) == recorded
