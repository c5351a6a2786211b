"""Retention services: soft delete, restore and hard delete of records.

Each takes the acting user (None for the system) and a reason, checks the actor's
permission, and runs in one transaction with its history rows (and, for a hard delete, its
ledger entry).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import ProtectedError, RestrictedError

from versions.context import change_context
from versions.models import LedgerAction
from versions.services import ledger_append

from .softdelete import NOT_DELETED, cascade_dependants, is_soft_delete_model

__all__ = ["RetentionRefused", "RowsResult", "rows_hard_delete", "rows_restore", "rows_soft_delete"]


class RetentionRefused(Exception):
    """The operation was refused and changed nothing; the message says why and what to do."""


@dataclass(frozen=True)
class RowsResult:
    total: int
    per_model: dict[str, int] = field(default_factory=dict)


def _require(actor, model, action: str) -> None:
    opts = model._meta
    if actor is not None and not actor.has_perm(f"{opts.app_label}.{action}_{opts.model_name}"):
        raise PermissionDenied(
            f"{actor} may not {action.replace('_', ' ')} {opts.verbose_name_plural}."
        )


def _soft_model(queryset) -> type[models.Model]:
    if not is_soft_delete_model(queryset.model):
        raise RetentionRefused(f"{queryset.model._meta.label} does not support soft delete.")
    return queryset.model


def rows_soft_delete(*, queryset, actor, reason: str) -> RowsResult:
    """Hide the live rows of `queryset` and the dependants that cascade from them."""
    model = _soft_model(queryset)
    _require(actor, model, "delete")
    with change_context(user=actor, reason=reason), transaction.atomic():
        total, per_model = model.all_objects.filter(
            NOT_DELETED, pk__in=queryset.values("pk")
        ).delete()
    return RowsResult(total, per_model)


def rows_restore(*, queryset, actor, reason: str) -> RowsResult:
    """Bring back deleted rows and exactly what their delete hid with them.

    Refused, changing nothing, when a restored row would clash with a live row on a unique
    constraint, or when a row's parent is itself deleted (restore the parent instead).
    """
    model = _soft_model(queryset)
    _require(actor, model, "change")
    _require(actor, model, "view_deleted")
    deleted = model.all_objects.filter(deleted_at__isnull=False, pk__in=queryset.values("pk"))
    with change_context(user=actor, reason=reason), transaction.atomic():
        _refuse_deleted_parents(model, deleted)
        _refuse_unique_clashes(model, deleted)
        total, per_model = deleted.restore()
    return RowsResult(total, per_model)


def rows_hard_delete(*, queryset, actor, reason: str) -> RowsResult:
    """Delete rows for good (live or soft-deleted), with a ledger entry; never the data."""
    model = queryset.model
    _require(actor, model, "hard_delete" if is_soft_delete_model(model) else "delete")
    manager = model.all_objects if is_soft_delete_model(model) else model._base_manager
    rows = manager.filter(pk__in=queryset.values("pk"))
    with change_context(user=actor, reason=reason), transaction.atomic():
        try:
            total, per_model = models.QuerySet.delete(rows)
        except (ProtectedError, RestrictedError) as exc:
            blockers = getattr(exc, "protected_objects", None) or exc.restricted_objects
            names = sorted({str(obj._meta.verbose_name_plural) for obj in blockers})
            raise RetentionRefused(
                f"Cannot delete these {model._meta.verbose_name_plural} for good: "
                f"{', '.join(names)} still refer to them and are kept."
            ) from exc
        if total:
            ledger_append(
                action=LedgerAction.HARD_DELETE,
                actor=actor,
                reason=reason,
                target=model._meta.label,
                counts=per_model,
            )
    return RowsResult(total, per_model)


def _refuse_deleted_parents(model, deleted) -> None:
    for parent_model in _soft_parents(model):
        for fk in _cascading_fks(model, parent_model):
            parents = parent_model.all_objects.filter(
                deleted_at__isnull=False, pk__in=deleted.values(fk.attname)
            )
            # A row whose parent was hidden by the same delete comes back with the parent.
            if parents.exists():
                raise RetentionRefused(
                    f"Some of these {model._meta.verbose_name_plural} belong to a deleted "
                    f"{parent_model._meta.verbose_name}: restore the "
                    f"{parent_model._meta.verbose_name} instead, which brings them back too."
                )


def _soft_parents(model):
    return {
        f.related_model
        for f in model._meta.concrete_fields
        if f.many_to_one and is_soft_delete_model(f.related_model)
    }


def _cascading_fks(model, parent_model):
    return [fk for dependant, fk in cascade_dependants(parent_model) if dependant is model]


def _refuse_unique_clashes(model, deleted) -> None:
    """A restored row must not take a unique value a live row has taken since."""
    for constraint in model._meta.constraints:
        if not isinstance(constraint, models.UniqueConstraint) or not constraint.fields:
            continue
        live = model.objects.all()
        clash = live.filter(
            models.Exists(
                deleted.filter(**{name: models.OuterRef(name) for name in constraint.fields})
            )
        )
        if clash.exists():
            raise RetentionRefused(
                f"Cannot restore: a live {model._meta.verbose_name} already has the same "
                f"{', '.join(constraint.fields)}. Change or delete that one first."
            )
