"""Exports of a data subject's data (Art. 15 and 20): the ZIP, its queue, expiry and download."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from uuid import UUID, uuid4

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import EmptyResultSet, PermissionDenied
from django.db import IntegrityError, connections, transaction
from django.db.models import Case, F, Func, TextField, Value, When
from django.db.models.functions import Cast
from django.db.models.lookups import Exact
from django.utils import timezone

from retention.models import RESTRICTION_GROUNDS, RetentionPolicy
from retention.selectors import subject_holds
from versions.context import change_context
from versions.files import copy_blocks, file_sha256, fsync_dir
from versions.ledger import ledger_append
from versions.models import LedgerAction
from versions.setbased import history_model_of

from .. import config
from ..models import (
    SubjectExport,
    SubjectRequest,
)
from ..registry import Category, ModelPrivacy, registry
from ..selectors import (
    SubjectRows,
    export_masks,
    export_orphans,
    subject_get,
    subject_gone,
    subject_walk,
)
from .common import ComplianceRefused, require_perm
from .requests import State, answered_request, request_move

# Export ----------------------------------------------------------------------------------
# A subject's data as a ZIP (Art. 15 and 20): per registered model that is exported, its rows
# and the history rows about the subject, each as JSON and CSV, and manifest.json with the
# Art. 15 metadata, row counts and a SHA-256 per file. Rows stream from the database into the
# ZIP entries (hashed as they are written); nothing holds a whole file. On PostgreSQL the
# database renders both files (COPY … TO STDOUT: to_json and csv), which makes the export
# several times faster than encoding each value in Python; elsewhere values_list() is read in
# chunks and encoded here. Both write the same text for the same rows.

EXPORT_FORMAT = "subject-export/1"
EXPORT_CHUNK_SIZE = 2000
NO_FIXED_PERIOD = "no fixed period"
NO_RECIPIENTS = "Nobody outside the controller."
# History rows carry when and how the record changed. Who changed it (a staff user's id, IP
# address, user agent) and the request or task are the staff's data, not the subject's
# (Art. 15(4)), and the reason is an internal note: they stay out of the export.
HISTORY_EXPORTED = ("history_id", "history_date", "history_type")
_MANIFEST = "manifest.json"
SUMMARY = "summary.html"
#: Rows per kind of data the readable summary shows; the rest are in the JSON and CSV files.
SUMMARY_ROWS = 50
ZIP_LEVEL = 1


@dataclass
class _FileStat:
    rows: int = 0
    bytes: int = 0
    sha256: str = ""


class _HashingWriter:
    """Writes bytes to a ZIP entry, hashing and counting them on the way."""

    def __init__(self, raw):
        self.raw, self.hash, self.bytes = raw, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.bytes += len(data)
        self.raw.write(data)


def _jsonable(value):
    """JSON for what the json module does not know: dates, decimals, UUIDs, phone numbers."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return str(value)


_ENCODER = json.JSONEncoder(default=_jsonable, ensure_ascii=False, separators=(",", ":"))


def _isoformat(value) -> str:
    return value.isoformat()


# Values the json and csv modules do not write as wanted, by field type: converted once per
# value through a table built per model, not tested type by type (the export's hot loop).
_TO_TEXT = {
    "DateTimeField": _isoformat,
    "DateField": _isoformat,
    "TimeField": _isoformat,
    "DecimalField": str,
    "UUIDField": str,
    "GenericIPAddressField": str,
    "BinaryField": _jsonable,
}


class _IsoText(Func):
    """A date or datetime as ISO 8601 text made by PostgreSQL (``to_json`` writes the same
    text as Python's isoformat() in UTC): the export then parses no timestamp."""

    template = "(to_json(%(expressions)s) #>> '{}')"
    output_field = TextField()


def _selection(model, columns: list[str], vendor: str, masks: dict) -> tuple[list, list, list[int]]:
    """For `columns` of `model`: what to select (names, or expressions), [(index, to text)]
    applied to JSON and CSV alike, and the indexes of JSON fields (JSON text in a CSV cell).
    A column in `masks` is read as its mask (`export_masks`)."""
    selected, values, structured = [], [], []
    for index, name in enumerate(columns):
        field = model._meta.get_field(name)
        kind = field.get_internal_type()
        if vendor == "postgresql" and kind in ("DateTimeField", "DateField"):
            selected.append(_IsoText(masks.get(name, name)))
            continue
        selected.append(masks.get(name, name))
        if kind in _TO_TEXT:
            values.append((index, _TO_TEXT[kind]))
        elif kind == "JSONField":
            structured.append(index)
    return selected, values, structured


def export_fields(entry: ModelPrivacy, model=None) -> list[str]:
    """The columns an export carries for `entry`'s model (or its history `model`): every
    concrete field except personal fields declared ``exported=False`` (tokens, secrets)."""
    withheld = {name for name, personal in entry.fields.items() if not personal.exported}
    columns = []
    for field in entry.model._meta.concrete_fields:
        if field.name in withheld:
            continue
        columns.append(field.attname)
    if model is None:
        return columns
    # A history model copies the tracked fields (minus its own excluded ones).
    present = {field.attname for field in model._meta.concrete_fields}
    return [*HISTORY_EXPORTED, *(name for name in columns if name in present)]


def _categories(entry: ModelPrivacy) -> list[str]:
    seen = []
    for personal in entry.fields.values():
        label = (
            Category(personal.category).label
            if personal.category in Category.values
            else personal.category
        )
        if label not in seen:
            seen.append(label)
    return seen


def retention_period(model) -> str:
    """The shortest period of the enabled retention policies on `model`, as text."""
    policy = (
        RetentionPolicy.objects.filter(
            enabled=True,
            target=ContentType.objects.get_for_model(model, for_concrete_model=False),
            period_days__isnull=False,
        )
        .order_by("period_days")
        .first()
    )
    entry = registry.get(model)
    if policy is None:
        # Kept by law rather than purged by a policy (orders): the period the registry declares.
        return (entry.retention_period if entry else "") or NO_FIXED_PERIOD
    basis = policy.basis_field or (entry.retention_basis if entry else "") or "history_date"
    return f"{policy.period_days} days from {basis}"


def _entry_metadata(walked: SubjectRows) -> dict:
    entry = walked.entry
    withheld = [name for name, p in entry.fields.items() if not p.exported]
    history_model = history_model_of(entry.model)
    return {
        "model": entry.label,
        "name": str(entry.model._meta.verbose_name_plural),
        "exported": entry.exported,
        "purposes": [entry.purpose] if entry.purpose else [],
        "lawful_basis": entry.lawful_basis,
        "categories": _categories(entry),
        "recipients": list(entry.recipients) or [NO_RECIPIENTS],
        "retention_period": retention_period(entry.model),
        "history_retention_period": (
            retention_period(history_model) if history_model is not None else None
        ),
        "source": entry.source,
        "automated_decisions": entry.automated_decisions,
        "transfers": entry.transfers,
        "erasure": entry.erasure,
        "legal_ground": entry.legal_ground,
        "withheld_fields": withheld,
    }


def _entry(name: str) -> zipfile.ZipInfo:
    """A compressed ZIP entry dated now (ZipFile.open would date it 1980)."""
    info = zipfile.ZipInfo(name, date_time=timezone.localtime().timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    # Level 1: several times faster than zlib's default, a little larger. Python 3.13 renamed
    # the attribute ZipFile.open sets from the archive's level.
    level = "compress_level" if hasattr(info, "compress_level") else "_compresslevel"
    setattr(info, level, ZIP_LEVEL)
    return info


def _flush(out: _HashingWriter, objects: list[str], rows: int, writer, lines: list) -> None:
    """Write a chunk: JSON objects one a line (a comma before all but the first), CSV rows."""
    if objects:
        out.write((("\n" if rows == len(objects) else ",\n") + ",\n".join(objects)).encode())
        writer.writerows(lines)
    objects.clear()
    lines.clear()


def _write_rows(
    archive, name: str, queryset, columns: list[str], chunk_size: int, stats, masks=None
):
    """Write NAME.json and NAME.csv of `queryset`'s `columns`, each column in `masks` read as
    its mask (`export_masks`); return the rows."""
    masks = masks or {}
    if connections[queryset.db].vendor == "postgresql":
        try:
            return _write_rows_copy(archive, name, queryset, columns, stats, masks)
        except EmptyResultSet:
            queryset = queryset.none()
    return _write_rows_python(archive, name, queryset, columns, chunk_size, stats, masks)


def _copy_sql(queryset, columns: list[str], variant: str, masks: dict) -> tuple[str, list]:
    """SELECT of `columns` (named so) over `queryset`, each rendered as the Python path would
    write it: ISO 8601 dates; decimals as strings in JSON; True/False in CSV."""
    expressions = {}
    for index, name in enumerate(columns):
        kind = queryset.model._meta.get_field(name).get_internal_type()
        read = masks.get(name, F(name))
        if kind in ("DateTimeField", "DateField"):
            expression = _IsoText(read)
        elif kind == "DecimalField" and variant == "json":
            expression = Cast(read, TextField())
        elif kind == "BooleanField" and variant == "csv":
            expression = Case(
                When(Exact(read, True), then=Value("True")),
                When(Exact(read, False), then=Value("False")),
                output_field=TextField(),
            )
        else:
            expression = read
        expressions[f"_export_{index}"] = expression
    selection = queryset.annotate(**expressions).values_list(*expressions)
    inner, params = selection.query.sql_with_params()
    quote = connections[queryset.db].ops.quote_name
    renamed = ", ".join(
        f"t.{quote(alias)} AS {quote(column)}"
        for alias, column in zip(expressions, columns, strict=True)
    )
    return f"SELECT {renamed} FROM ({inner}) t", list(params)


def _write_rows_copy(archive, name: str, queryset, columns: list[str], stats, masks) -> int:
    """PostgreSQL: the database writes both files (COPY … TO STDOUT, streamed block by block):
    JSON objects by ``to_json``, CSV by COPY's csv format. Python only moves the bytes."""
    json_name, csv_name = f"{name}.json", f"{name}.csv"
    select_json, json_params = _copy_sql(queryset, columns, "json", masks)
    select_csv, csv_params = _copy_sql(queryset, columns, "csv", masks)
    with connections[queryset.db].cursor() as cursor:
        with archive.open(_entry(json_name), "w", force_zip64=True) as raw:
            out = _HashingWriter(raw)
            out.write(b"[")
            separator = b"\n"
            copy = f"COPY (SELECT to_json(r) FROM ({select_json}) r) TO STDOUT"
            for block in copy_blocks(cursor, copy, json_params):
                # COPY's text format doubles each backslash and nothing else here: JSON text
                # has no raw newline or tab, so each line is one object.
                block = block.replace(b"\\\\", b"\\")[:-1].replace(b"\n", b",\n")
                out.write(separator + block)
                separator = b",\n"
            rows = cursor.rowcount
            out.write(b"\n]\n")
        stats[json_name] = _FileStat(rows, out.bytes, out.hash.hexdigest())
        with archive.open(_entry(csv_name), "w", force_zip64=True) as raw_csv:
            out = _HashingWriter(raw_csv)
            copy = f"COPY ({select_csv}) TO STDOUT WITH (FORMAT csv, HEADER)"
            for block in copy_blocks(cursor, copy, csv_params):
                out.write(block)
        stats[csv_name] = _FileStat(cursor.rowcount, out.bytes, out.hash.hexdigest())
    return rows


def _write_rows_python(
    archive, name: str, queryset, columns: list[str], chunk_size: int, stats, masks
) -> int:
    """Stream `queryset`'s `columns` into NAME.json and NAME.csv inside `archive`.

    One read of the rows: the JSON entry is written directly, the CSV is spooled to a
    temporary file (on disk past 1 MB) and copied into its entry afterwards, since a ZIP
    has one entry open for writing at a time.
    """
    json_name, csv_name = f"{name}.json", f"{name}.csv"
    rows = 0
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as spool:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(columns)
        with archive.open(_entry(json_name), "w", force_zip64=True) as raw:
            out = _HashingWriter(raw)
            out.write(b"[")
            encode, objects, lines = _ENCODER.encode, [], []
            vendor = connections[queryset.db].vendor
            selected, convert, structured = _selection(queryset.model, columns, vendor, masks)
            for row in queryset.values_list(*selected).iterator(chunk_size=chunk_size):
                if convert:
                    row = list(row)
                    for index, to_text in convert:
                        if row[index] is not None:
                            row[index] = to_text(row[index])
                objects.append(encode(dict(zip(columns, row, strict=True))))
                if structured:
                    row = list(row)
                    for index in structured:
                        row[index] = "" if row[index] is None else encode(row[index])
                lines.append(row)
                rows += 1
                if len(objects) >= chunk_size:
                    _flush(out, objects, rows, writer, lines)
            _flush(out, objects, rows, writer, lines)
            out.write(b"\n]\n")
        stats[json_name] = _FileStat(rows, out.bytes, out.hash.hexdigest())
        text.flush()
        text.detach()
        spool.seek(0)
        with archive.open(_entry(csv_name), "w", force_zip64=True) as raw_csv:
            copy = _HashingWriter(raw_csv)
            while block := spool.read(1 << 20):
                copy.write(block)
        stats[csv_name] = _FileStat(rows, copy.bytes, copy.hash.hexdigest())
    return rows


class _Staged:
    """Stands in for the ZIP while the snapshot is open: each entry is written as it comes,
    uncompressed, to a file of its own; `compress_into` then deflates them into the ZIP."""

    def __init__(self, directory: Path):
        self.directory, self.entries = directory, []

    def open(self, info: zipfile.ZipInfo, mode: str = "w", force_zip64: bool = False):
        path = self.directory / str(len(self.entries))
        self.entries.append((info, path))
        return open(path, "wb")  # noqa: SIM115 - the caller's with closes it

    def writestr(self, info: zipfile.ZipInfo, data: str) -> None:
        with self.open(info) as out:
            out.write(data.encode())

    def compress_into(self, path: Path) -> None:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as zf:
            for info, staged in self.entries:
                with open(staged, "rb") as source, zf.open(info, "w", force_zip64=True) as out:
                    shutil.copyfileobj(source, out, 1 << 20)


def _write_archive(
    path: Path, subject, export: SubjectExport, chunk_size: int, progress
) -> tuple[dict, dict]:
    """Write the ZIP at `path`; return (rows per file, the manifest's per-model metadata).

    Every file is read in one snapshot and staged uncompressed beside `path`; the snapshot
    then ends and the staged files are compressed into the ZIP: the transaction lasts as
    long as the database takes to hand the rows over, not as long as deflating them."""
    staging = path.with_name(f"{path.name}.staging")
    staging.mkdir(mode=0o700)
    try:
        staged = _Staged(staging)
        with _snapshot():
            result = _stage_archive(staged, subject, export, chunk_size, progress)
        staged.compress_into(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _stage_archive(
    zf: _Staged, subject, export: SubjectExport, chunk_size: int, progress
) -> tuple[dict, dict]:
    stats: dict[str, _FileStat] = {}
    models_meta, sections = [], []
    for walked in subject_walk(subject):
        meta = _entry_metadata(walked)
        models_meta.append(meta)
        if not walked.entry.exported:
            meta["rows"] = walked.rows.count()
            continue
        sections.append((walked, meta))
        base = f"{walked.model._meta.app_label}.{walked.model._meta.model_name}"
        meta["rows"] = _write_rows(
            zf,
            base,
            walked.rows,
            export_fields(walked.entry),
            chunk_size,
            stats,
            export_masks(walked, walked.model),
        )
        meta["files"] = [f"{base}.json", f"{base}.csv"]
        if walked.history is not None:
            meta["history_rows"] = _write_rows(
                zf,
                f"{base}.history",
                walked.history,
                export_fields(walked.entry, walked.history.model),
                chunk_size,
                stats,
                export_masks(walked, walked.history.model),
            )
            meta["files"] += [f"{base}.history.json", f"{base}.history.csv"]
        if progress is not None:
            progress(walked.entry.label, meta["rows"] + meta.get("history_rows", 0))
    subject_model = registry.subject_model()
    manifest = {
        "format": EXPORT_FORMAT,
        "export": export.pk,
        "created_at": timezone.now().isoformat(),
        "subject": {
            "model": subject_model._meta.label,
            "pk": subject.pk if isinstance(subject.pk, int) else str(subject.pk),
        },
        "note": (
            "One JSON and one CSV file per kind of record, with the same rows; *.history.* "
            "files hold earlier versions of the records (history_type + created, ~ changed, "
            "- deleted). models lists why and on which basis each is processed, who "
            "receives it, how long it is kept and where it comes from (GDPR Art. 15)."
        ),
        "models": models_meta,
        "files": {
            name: {"rows": s.rows, "bytes": s.bytes, "sha256": s.sha256}
            for name, s in stats.items()
        },
    }
    summary_text, _ = export_summary(subject, sections)
    summary = summary_text.encode()
    zf.writestr(_entry(SUMMARY), summary_text)
    manifest["files"][SUMMARY] = {
        "bytes": len(summary),
        "sha256": hashlib.sha256(summary).hexdigest(),
    }
    manifest_text = json.dumps(manifest, indent=2, ensure_ascii=False, default=str)
    zf.writestr(_entry(_MANIFEST), manifest_text)
    # Rows per data set ("shop.order", "shop.order.history"): its JSON and CSV hold the same.
    counts = {name[: -len(".json")]: s.rows for name, s in stats.items() if name.endswith(".json")}
    return counts, models_meta


# Summary ---------------------------------------------------------------------------------
# summary.html: the same data for a person to read (Art. 15(3)), beside the files for a
# machine (Art. 20). Per kind of data, up to SUMMARY_ROWS rows with values shown as a person
# knows them (labels, names, dates), and the Art. 15(1)-(2) information from the registry and
# the settings. Keys, bookkeeping and staff columns stay out; so do other people's fields
# (the same masks as the files).


def _summary_columns(entry: ModelPrivacy, model) -> list:
    """The fields the summary shows for `entry`'s model: what is the subject's (their
    personal fields, the record's own facts, the things it names), not keys to the subject,
    links to staff, soft-delete bookkeeping or withheld fields."""
    from django.contrib.auth import get_user_model

    withheld = {name for name, personal in entry.fields.items() if not personal.exported}
    hidden_targets = (registry.subject_model(), get_user_model())
    columns = []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.name in withheld or field.name in _INTERNAL_FIELDS:
            continue
        if field.is_relation and issubclass(field.related_model, hidden_targets):
            continue
        if field.get_internal_type() in ("UUIDField", "BinaryField"):
            continue
        columns.append(field)
    return columns


# Bookkeeping columns of the soft delete and of the sample models: not the subject's data.
_INTERNAL_FIELDS = frozenset({"deletion", "deletion_id", "sha256", "token"})


def _summary_value(field, value, related: dict):
    """`value` of `field` as a person reads it: a choice's label, a linked record's name (a
    text's wording), a date in the active language's format, yes/no."""
    from django.utils.formats import date_format
    from django.utils.translation import gettext

    if value is None or value == "":
        return ""
    if field.is_relation:
        target = related.get(field.name, {}).get(value)
        return getattr(target, "text", None) or (str(target) if target is not None else "")
    if field.flatchoices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, datetime):
        return date_format(timezone.localtime(value), "DATETIME_FORMAT")
    if isinstance(value, date):
        return date_format(value, "DATE_FORMAT")
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    return str(value)


def _summary_rows(walked: SubjectRows, columns: list) -> list[list[str]]:
    """The first SUMMARY_ROWS rows of `walked`, masked like the files, as display text."""
    masks = export_masks(walked, walked.model)
    selection = {
        f"_s{index}": masks.get(f.attname, F(f.attname)) for index, f in enumerate(columns)
    }
    raw = list(walked.rows.values_list(*selection.values())[:SUMMARY_ROWS]) if selection else []
    related = {}
    for index, field in enumerate(columns):
        if field.is_relation:
            keys = {row[index] for row in raw if row[index] is not None}
            related[field.name] = field.related_model._base_manager.in_bulk(keys)
    return [
        [_summary_value(field, row[index], related) for index, field in enumerate(columns)]
        for row in raw
    ]


def export_summary(subject, sections) -> tuple[str, int]:
    """summary.html of the export of `subject`: its text and the rows it shows. `sections`
    is [(walked, its manifest metadata)] of the exported models."""
    from django.template.loader import render_to_string

    kinds, shown = [], 0
    for walked, meta in sections:
        columns = _summary_columns(walked.entry, walked.model)
        rows = _summary_rows(walked, columns) if meta["rows"] else []
        shown += len(rows)
        kinds.append(
            {
                "name": meta["name"],
                "meta": meta,
                "headers": [str(field.verbose_name) for field in columns],
                "rows": rows,
                "more": max(meta["rows"] - len(rows), 0),
                "history_rows": meta.get("history_rows", 0),
            }
        )
    context = {
        "kinds": kinds,
        "limit": SUMMARY_ROWS,
        "created_at": timezone.localtime(),
        "controller_name": config.controller_name(),
        "controller_contact": config.controller_contact(),
        "dpo_contact": config.dpo_contact(),
        "supervisory_authority": config.supervisory_authority(),
    }
    return render_to_string("compliance/export/summary.html", context), shown


@contextmanager
def _snapshot():
    """A transaction in which every file of the export reads the same moment: REPEATABLE READ
    on PostgreSQL when it is the outermost one. It only reads; the record and the ledger entry
    are written in a transaction of their own (a long snapshot would see a stale ledger head).
    """
    connection = transaction.get_connection()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def subject_export(
    *,
    subject,
    actor,
    reason: str,
    export: SubjectExport | None = None,
    output: Path | str | None = None,
    request: SubjectRequest | None = None,
    recipient=None,
    chunk_size: int = EXPORT_CHUNK_SIZE,
    progress: Callable[[str, int], None] | None = None,
) -> SubjectExport:
    """Write `subject`'s export ZIP and record it; returns the done export.

    `export` is a pending record made by `subject_export_queue` (the task passes it); else
    one is created. The ZIP goes to COMPLIANCE_EXPORT_DIR, or to `output` (the command).
    It is written to a temporary file beside its destination and renamed into place only
    when complete, so a failure leaves no partial file; the record then says "failed" with
    the error, and the error is raised again. `progress(model label, rows)` is called after
    each model. A new record names `request`, the data-subject request it answers, and
    `recipient`, an officer besides `actor` who may download it.
    """
    require_perm(actor, "compliance.add_subjectexport", "run data-subject exports")
    if subject is None:
        message = "The subject of this export no longer exists: nothing to export."
        if export is not None:
            SubjectExport.objects.filter(pk=export.pk).update(
                status=SubjectExport.Status.FAILED, finished_at=timezone.now(), error=message
            )
        raise ComplianceRefused(message)
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    _export_restriction_refuse(subject, request or (export.request if export else None))
    if export is None:
        answered_request(request, subject, what="export", reason=reason)
        export = _export_create(
            **_export_record(
                subject, actor=actor, reason=reason, request=request, recipient=recipient
            )
        )
    elif export.status not in (SubjectExport.Status.PENDING, SubjectExport.Status.FAILED):
        raise ComplianceRefused(
            f"Export #{export.pk} has the status {export.get_status_display().lower()!r}: "
            "start a new export."
        )
    else:
        request = export.request  # queued: still verified and open now it runs?
        try:
            answered_request(request, subject, what="export", reason=export.reason)
        except ComplianceRefused as exc:
            SubjectExport.objects.filter(pk=export.pk).update(
                status=SubjectExport.Status.FAILED, finished_at=timezone.now(), error=str(exc)
            )
            raise
    export.status, export.started_at = SubjectExport.Status.RUNNING, timezone.now()
    export.error = ""
    export.download_key = export.download_key or secrets.token_urlsafe(32)
    export.save(update_fields=["status", "started_at", "error", "download_key"])

    if output is not None:
        final = Path(output).resolve()
        filename = ""
    else:
        filename = f"subject-export-{export.pk}-{uuid4().hex}.zip"
        final = config.export_dir() / filename
    temporary = final.with_name(f".{final.name}.{uuid4().hex}.part")
    renamed = False
    try:
        final.parent.mkdir(parents=True, exist_ok=True)  # a failure here is recorded too
        with change_context(user=actor, reason=reason):
            counts, _ = _write_archive(temporary, subject, export, chunk_size, progress)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        size, sha256 = temporary.stat().st_size, file_sha256(temporary)
        with change_context(user=actor, reason=reason), transaction.atomic():
            # The request may have been rejected while the ZIP was written: then this fails.
            answered = answered_request(request, subject, what="export", reason=reason, lock=True)
            now = timezone.now()
            export.status, export.finished_at = SubjectExport.Status.DONE, now
            export.filename, export.size, export.sha256, export.counts = (
                filename,
                size,
                sha256,
                counts,
            )
            export.expires_at = now + timedelta(days=config.export_expiry_days())
            export.save()
            ledger_append(
                action=LedgerAction.EXPORT,
                actor=actor,
                reason=reason,
                target=f"{registry.subject_model()._meta.label}:{subject.pk}",
                counts=counts,
                details={
                    "export": export.pk,
                    "request": export.request_id,
                    "sha256": sha256,
                    "bytes": size,
                },
            )
            if answered is not None and answered.state == State.VERIFIED:
                request_move(  # the answer is ready: the request now awaits its delivery
                    answered,
                    actor=actor,
                    reason=f"Export #{export.pk} finished: awaiting delivery",
                    transition="start",
                    to=State.IN_PROGRESS,
                    details={"export": export.pk},
                    started_at=now,
                )
            os.chmod(temporary, 0o600)  # the subject's data: readable by the application only
            os.replace(temporary, final)
            renamed = True
            fsync_dir(final.parent)
    except BaseException as exc:
        with suppress(OSError):  # the clean-up must not hide what failed
            temporary.unlink(missing_ok=True)
            if renamed:
                final.unlink(missing_ok=True)  # in place, then the commit failed
        SubjectExport.objects.filter(pk=export.pk).update(
            status=SubjectExport.Status.FAILED,
            finished_at=timezone.now(),
            error=export_failure(exc, final.parent, output is None)[:2000],
            filename="",
        )
        export.refresh_from_db()
        raise
    return export


def export_failure(exc: BaseException, directory: Path, stored: bool) -> str:
    """What failed, in words an officer can act on; the traceback stays in the log."""
    where = "The export directory (COMPLIANCE_EXPORT_DIR)" if stored else "The output directory"
    if isinstance(exc, ComplianceRefused):
        return str(exc)
    if isinstance(exc, OSError):
        return (
            f"{where} {directory} could not be written: {exc.strerror or exc}. Ask the "
            "operator to check that it exists, is writable by the application and has free "
            "space, then run the export again."
        )
    return (
        f"The export stopped on an unexpected error ({type(exc).__name__}: {exc}). Run it "
        "again; if it fails again, give the operator this export's number: the full error "
        "is in the application's log."
    )


def _export_restriction_refuse(subject, request: SubjectRequest | None) -> None:
    """An export is processing: of a subject whose processing is restricted (Art. 18), only
    one that answers their own request runs (Art. 15; Art. 18(2): at their wish)."""
    restricted = subject_holds(subject).filter(ground__in=RESTRICTION_GROUNDS).exists()
    if restricted and request is None:
        raise ComplianceRefused(
            "Processing of this subject's data is restricted (GDPR Art. 18): an export runs "
            "only to answer their own request. Record their request and export from its "
            "page, or lift the restriction first."
        )


def _export_create(**fields) -> SubjectExport:
    """A new export record; refused while another export of the subject waits or runs."""
    try:
        with transaction.atomic():
            return SubjectExport.objects.create(**fields)
    except IntegrityError:
        waiting = SubjectExport.objects.filter(
            subject_key=fields["subject_key"], status__in=SubjectExport.WAITING
        ).first()
        if waiting is None:
            raise
        raise ComplianceRefused(
            f"Export #{waiting.pk} of this subject is {waiting.get_status_display().lower()}: "
            "wait for it to finish, then export again if still needed."
        ) from None


def _export_record(subject, *, actor, reason: str, request, recipient) -> dict:
    """A new export's fields. It names its subject by the row and by the key, which outlives
    the row (a subject known from history only has the key alone); its download page is
    addressed by an unguessable key, and `recipient` must be an officer who may download."""
    if recipient is not None and not recipient.has_perm(DOWNLOAD_PERMISSION):
        raise ComplianceRefused(
            f"{recipient} may not download data-subject exports: name a privacy officer."
        )
    return {
        "subject": None if subject_gone(subject) else subject,
        "subject_key": str(subject.pk),
        "requested_by": actor,
        "reason": reason,
        "request": request,
        "recipient": recipient,
        "download_key": secrets.token_urlsafe(32),
    }


def export_subject_of(export: SubjectExport):
    """The subject an export is about: its row, else what history holds of them; None."""
    if export.subject_id is not None:
        return export.subject
    return subject_get(export.subject_key) if export.subject_key else None


def subject_export_queue(
    *, subject, actor, reason: str, request: SubjectRequest | None = None, recipient=None
) -> SubjectExport:
    """Record a pending export of `subject` (answering `request`, if given) and run it in a
    Celery task once committed; an export of the subject already queued or running is
    returned instead of a second one."""
    require_perm(actor, "compliance.add_subjectexport", "run data-subject exports")
    answered_request(request, subject, what="export", reason=reason)
    _export_restriction_refuse(subject, request)
    from ..tasks import export_run  # the task module imports this one

    waiting = SubjectExport.objects.select_for_update().filter(
        subject_key=str(subject.pk), status__in=SubjectExport.WAITING
    )
    with change_context(user=actor, reason=reason), transaction.atomic():
        # The lock finds a committed waiting export; one inserted by a queue not yet committed
        # is invisible, and the partial unique constraint (one waiting export per subject)
        # then makes this insert wait for it: once it commits, it is returned instead.
        for attempt in range(2):
            if (found := waiting.first()) is not None:
                return found  # a second click while one is queued or running queues nothing
            try:
                with transaction.atomic():  # a savepoint: the concurrent queue may win
                    export = SubjectExport.objects.create(
                        **_export_record(
                            subject,
                            actor=actor,
                            reason=reason,
                            request=request,
                            recipient=recipient,
                        )
                    )
                break
            except IntegrityError:
                if attempt:
                    raise
        # robust: a task run in-process (no broker) that fails has recorded its failure on
        # the export and logged it; it must not turn the officer's page into an error.
        transaction.on_commit(lambda: export_run.delay(export.pk), robust=True)
    return export


def export_path(export: SubjectExport) -> Path | None:
    """Where the export's ZIP is stored, or None when it is not in the export directory."""
    if not export.filename:
        return None
    return config.export_dir() / Path(export.filename).name


def _file_remove(export: SubjectExport) -> None:
    path = export_path(export)
    if path is not None:
        path.unlink(missing_ok=True)


def exports_expire(*, now: datetime | None = None) -> int:
    """Delete the files of exports past their expiry and mark them expired; return how many.

    A released copy expires with its download link: when the person never downloaded it,
    the request it answers completes with the outcome "expired without download" (in the
    same transaction as the export's new status).

    Then sweep the export directory against the catalogue: a file no finished export keeps
    (an erased subject's ZIP whose after-commit delete was lost to a crash, a file with no
    row, a stale .part) is deleted too, so no copy outlives its export or an erasure."""
    now = now or timezone.now()
    expired = SubjectExport.objects.filter(status=SubjectExport.Status.DONE, expires_at__lte=now)
    count = 0
    for export in expired.iterator():
        _file_remove(export)
        with transaction.atomic():
            export.status = SubjectExport.Status.EXPIRED
            export.save(update_fields=["status"])
            if export.released_at is not None and not export.downloads:
                _request_outcome(export, SubjectRequest.Outcome.EXPIRED, now=now)
        count += 1
    for orphan in export_orphans(now=now):
        if orphan.is_dir():
            shutil.rmtree(orphan, ignore_errors=True)
        else:
            orphan.unlink(missing_ok=True)
    return count


def _request_outcome(export: SubjectExport, outcome: str, *, now: datetime) -> None:
    """Complete the request a released `export` answers with `outcome` (downloaded, or
    expired without download), unless it is final already; in the caller's transaction."""
    if export.request_id is None:
        return
    request = SubjectRequest.objects.select_for_update().filter(pk=export.request_id).first()
    if request is None or request.state != State.IN_PROGRESS:
        return
    request_move(
        request,
        actor=None,
        reason=f"Export #{export.pk}: {SubjectRequest.Outcome(outcome).label.lower()}",
        transition="complete",
        to=State.COMPLETED,
        details={"export": export.pk, "outcome": outcome},
        completed_at=now,
        outcome=outcome,
    )


def subject_exports_remove(*, subject) -> int:
    """Delete the stored ZIPs of `subject`'s exports once the caller's transaction commits,
    and mark those exports expired; return how many. For erasure: the files hold the data."""
    exports = list(
        SubjectExport.objects.filter(subject_key=str(subject.pk), status=SubjectExport.Status.DONE)
        .exclude(filename="")
        .select_for_update()
    )
    for export in exports:
        transaction.on_commit(partial(_file_remove, export))
    SubjectExport.objects.filter(pk__in=[e.pk for e in exports]).update(
        status=SubjectExport.Status.EXPIRED, expires_at=timezone.now()
    )
    return len(exports)


DOWNLOAD_PERMISSION = "compliance.download_subjectexport"


def export_may_download(export: SubjectExport, actor) -> bool:
    """Whether `actor` may download `export`: an officer with the permission who ran it or
    whom it names (None, the system, may). Reads only."""
    return actor is None or (
        actor.has_perm(DOWNLOAD_PERMISSION)
        and actor.pk in (export.requested_by_id, export.recipient_id)
    )


def export_download(*, export: SubjectExport, actor, reason: str = "", link=None):
    """Open the export's ZIP for download and write the ledger entry for it.

    An officer: only the one who ran the export, or the one it names, may (PermissionDenied
    for anyone else). The person (`link`: their download link, already resolved and their
    email proven again by `delivery_download`; `actor` None): only a released export of the
    link's request; the download is counted, and the first one completes the request with
    the outcome "downloaded". Refused (ComplianceRefused) when the export is not done, has
    expired (its file is then deleted) or its file is missing. The caller streams and
    closes the file.
    """
    if link is None:
        require_perm(actor, DOWNLOAD_PERMISSION, "download data-subject exports")
        if not export_may_download(export, actor):
            raise PermissionDenied(
                f"Export #{export.pk} is downloaded only by the officer who ran it or the one "
                "it names: ask them, or run a new export."
            )
    elif (
        link.request_id != export.request_id
        or export.released_at is None
        or link.request.state == State.REJECTED
    ):
        raise ComplianceRefused(
            "This link does not lead to a copy that was released to you: use the link of "
            "the latest email about your request."
        )
    if export.status == SubjectExport.Status.DONE and export.expires_at <= timezone.now():
        exports_expire()
        export.refresh_from_db()
    if export.status == SubjectExport.Status.EXPIRED:
        raise ComplianceRefused(
            f"Export #{export.pk} expired on {export.expires_at:%Y-%m-%d %H:%M} and its file "
            "was deleted: run a new export of the subject."
        )
    if export.status != SubjectExport.Status.DONE:
        raise ComplianceRefused(
            f"Export #{export.pk} has the status {export.get_status_display().lower()!r}: only "
            "a finished export can be downloaded."
        )
    path = export_path(export)
    if path is None:
        raise ComplianceRefused(
            f"Export #{export.pk} was written to a file by the export_subject command and is "
            "not stored here."
        )
    try:
        handle = open(path, "rb")  # noqa: SIM115 - the response closes it
    except FileNotFoundError:
        raise ComplianceRefused(
            f"The file of export #{export.pk} is missing from the export directory: run a new "
            "export of the subject."
        ) from None
    try:
        with change_context(user=actor, reason=reason), transaction.atomic():
            details = {}
            if link is not None:  # the person's download: counted, the first completes
                locked = SubjectExport.objects.select_for_update().get(pk=export.pk)
                locked.downloads += 1
                locked.save(update_fields=["downloads"])
                export.downloads = locked.downloads
                details = {"by": "subject", "downloads": locked.downloads}
                if locked.downloads == 1:
                    _request_outcome(locked, SubjectRequest.Outcome.DOWNLOADED, now=timezone.now())
            ledger_append(
                action=LedgerAction.EXPORT_DOWNLOAD,
                actor=actor,
                reason=reason,
                target=f"{registry.subject_model()._meta.label}:{export.subject_key}",
                details={
                    "export": export.pk,
                    "request": export.request_id,
                    "sha256": export.sha256,
                    "bytes": export.size,
                    **details,
                },
            )
    except BaseException:
        handle.close()
        raise
    return handle
