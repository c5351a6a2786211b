"""Backfills: copy one column into another across a whole table, on the shared batch engine.

A backfill is schema work (the middle step of an expand-contract change, docs/migrations.md),
not a privileged action on personal data, so it writes no ledger entry. It runs through
`retention.engine.batches_run` like the purge: key ranges planned up to the highest key that
existed when the job started (rows written later are the new code's, or the sync trigger's),
a commit per batch, a pause between batches, a time budget, and a killed run resumes from
its unfinished ranges. It lives here, not in `retention`, because it belongs to no app: it
serves any app's migrations.

`QuerySet.update()` writes no history rows: a backfill fills a copy of a value the history
already holds, so no version of the record is lost.
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.db.models import F

from retention.engine import BatchReport, batches_planned, batches_run

__all__ = [
    "BackfillRefused",
    "backfill_job",
    "backfill_pending",
    "backfill_planned",
    "column_backfill",
]

# Column types that hold the same values: a copy between them loses nothing.
_TEXT = {"CharField", "TextField", "EmailField", "SlugField", "URLField"}


class BackfillRefused(ValueError):
    """The backfill cannot run as asked; the message says why and what to do."""


def backfill_job(model: type[models.Model], target: str) -> str:
    """The batch engine's job name: a rerun with the same model and target resumes it."""
    return f"backfill:{model._meta.label_lower}:{target}"


def _column(model: type[models.Model], name: str, role: str) -> models.Field:
    label = model._meta.label
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        columns = ", ".join(
            f.name for f in model._meta.concrete_fields if not f.is_relation and not f.primary_key
        )
        raise BackfillRefused(
            f"{label} has no field {name!r} ({role}). Its columns: {columns}."
        ) from None
    if not getattr(field, "concrete", False) or field.is_relation or field.primary_key:
        raise BackfillRefused(
            f"{label}.{name} ({role}) is not a plain column: give a field that is neither a "
            "relation nor the primary key."
        )
    return field


def _fields(model, target: str, source: str) -> tuple[models.Field, models.Field]:
    """The validated (target, source) fields: plain columns of the same kind, target nullable."""
    if target == source:
        raise BackfillRefused("The target and the source are the same field: give two fields.")
    goal, origin = _column(model, target, "target"), _column(model, source, "source")
    label = model._meta.label
    if not goal.null:
        raise BackfillRefused(
            f"{label}.{target} cannot be null, so no row is waiting for a backfill: the "
            "target of a backfill is the new, nullable column of an expand migration."
        )
    kinds = {goal.get_internal_type(), origin.get_internal_type()}
    if len(kinds) > 1 and not kinds <= _TEXT:
        raise BackfillRefused(
            f"{label}.{source} is a {origin.get_internal_type()} and {label}.{target} a "
            f"{goal.get_internal_type()}: a backfill copies values as they are, between "
            "columns of the same type."
        )
    if goal.max_length is not None and (origin.max_length or float("inf")) > goal.max_length:
        raise BackfillRefused(
            f"{label}.{target} holds at most {goal.max_length} characters, "
            f"{label}.{source} up to {origin.max_length or 'any number'}: values could be cut."
        )
    return goal, origin


def backfill_pending(*, model: type[models.Model], target: str, source: str) -> models.QuerySet:
    """Rows (soft-deleted ones included) whose target is empty and whose source is not."""
    _fields(model, target, source)
    return model._base_manager.filter(
        **{f"{target}__isnull": True, f"{source}__isnull": False}
    ).order_by()


def backfill_planned(
    *, model: type[models.Model], target: str, source: str, batch_size: int
) -> tuple[int, int]:
    """(rows, batches) a backfill would handle now: what a dry run reports."""
    pending = backfill_pending(model=model, target=target, source=source)
    rows = pending.count()
    return rows, batches_planned(pending, batch_size) if rows else 0


def column_backfill(
    *,
    model: type[models.Model],
    target: str,
    source: str,
    actor=None,
    reason: str = "",
    batch_size: int = 1000,
    pause: float = 0.0,
    max_seconds: float | None = None,
    max_rows: int | None = None,
    progress: bool | None = None,
) -> BatchReport:
    """Set `target` to `source` where `target` is null and `source` is not, batch by batch,
    over the rows that existed when the job was planned. Run it again to resume.

    `model` may be a migration state's model (the command's --as-of), so a backfill can name
    a column the current code no longer declares. `actor` None is the operator's shell or a
    deploy script; a named user must be a superuser (schema work, not an officer's).
    """
    if actor is not None and not actor.is_superuser:
        raise PermissionDenied("Only a superuser runs a backfill (it changes a whole table).")
    pending = backfill_pending(model=model, target=target, source=source)
    return batches_run(
        job=backfill_job(model, target),
        queryset=pending,
        apply=lambda batch, span: {"rows": batch.update(**{target: F(source)})},
        batch_size=batch_size,
        max_seconds=max_seconds,
        max_rows=max_rows,
        progress=progress,
        total=pending.count() if progress is not False else None,
        pause=pause,
    )
