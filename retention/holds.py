"""Legal holds and restrictions of processing (Art. 18): which rows they keep, and the
guard that makes a restriction hold on every path that changes rows.

A restriction is a legal hold on an Art. 18 ground. Purges and erasures leave held rows out
by their own queries (`held_q`). Every other change to a restricted subject's rows of a
registered model is refused with `ProcessingRestricted`, which says why:

- ``Model.save()`` of an existing row and ``Model.delete()`` (with what its delete
  cascades to), and ``QuerySet.delete()`` through Django's collector: ``pre_save`` and
  ``pre_delete`` receivers, connected for every registered model; a collector's rows are
  checked once per delete, set-based, not once per row;
- ``QuerySet.update()``, ``delete()`` and soft delete's ``soft_delete()`` and ``restore()``
  of a model whose queryset derives from `RestrictedQuerySet` (the soft-delete base's does;
  give your registered models ``objects = RestrictedQuerySet.as_manager()``, or a manager
  built from a subclass).

Inserting a row is storage and is not refused. The services that answer or lift a
restriction (an officer's rectification with a reason in the admin, Art. 16 with 18(1)(a))
run inside `restriction_override(reason=…)`. A model whose rows record how the subject's
rights are handled (requests, consent evidence) says ``restriction_applies = False`` in its
registry declaration. Set-based writes that name their rows themselves (the purge's and the
erasure's, which leave held rows out) go below the queryset and are not checked again.
"""

from __future__ import annotations

import contextvars
import weakref
from contextlib import contextmanager

from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Cast
from django.db.models.signals import pre_delete, pre_save

from compliance.registry import registry

from .models import RESTRICTION_GROUNDS, LegalHold

__all__ = [
    "holds_lock",
    "ProcessingRestricted",
    "RestrictedQuerySet",
    "held_q",
    "holds_active",
    "holdable_models",
    "holdable_register",
    "live_model",
    "restricted_q",
    "restriction_connect",
    "restriction_override",
    "restriction_refuse",
    "subject_holds",
]


# Models beyond the registry's whose rows a hold may name, registered by the app above that
# owns them at ready time (operations registers its backups: cleanup spares a held one).
_HOLDABLE: list = []


def holdable_register(model) -> None:
    """Let a legal hold name rows of `model` too; the registry's models always can."""
    if model not in _HOLDABLE:
        _HOLDABLE.append(model)


def holdable_models() -> list:
    """Every model a legal hold may name: the registry's, then the registered ones."""
    return [*(entry.model for entry in registry.entries()), *_HOLDABLE]


def live_model(model):
    """The live model of a history model, else the model itself."""
    return getattr(model, "instance_type", model)


def held_q(model, *, dependants: int = 2, holds: models.QuerySet | None = None) -> Q:
    """Rows of `model` kept by an active legal hold: on their subject, on themselves, or on a
    row their deletion would cascade to (`dependants` levels down). `holds` narrows the holds
    considered (e.g. to one ground); default every hold.

    The holds are subqueries, not a list read once: every statement of a long purge sees
    a hold placed while it runs.
    """
    tracked = live_model(model)
    # History rows copy the record's key under its own name; live rows have it as pk.
    key = tracked._meta.pk.attname if model is not tracked else "pk"
    q = Q(**{f"{key}__in": _held_keys(tracked, holds)})
    entry = registry.get(tracked)
    if entry is not None:
        subject_keys = _held_keys(registry.subject_model(), holds)
        for path in entry.subject_lookups(history=model is not tracked):
            q |= Q(**{f"{path}__in": subject_keys})
    if dependants and model is tracked:
        for dependant, field in _cascades(model):
            below = dependant._base_manager.filter(
                held_q(dependant, dependants=dependants - 1, holds=holds),
                **{field.name: OuterRef("pk")},
            )
            q |= Q(Exists(below))
    return q


def restricted_q(model) -> Q:
    """Rows of `model` whose processing is restricted (Art. 18): a restriction on their
    subject or on themselves."""
    return held_q(
        model, dependants=0, holds=LegalHold.objects.filter(ground__in=RESTRICTION_GROUNDS)
    )


def _held_keys(model, holds=None):
    """The keys of `model`'s rows under an active hold, as a subquery of the model's key type."""
    pk = model._meta.pk
    key_type = models.BigIntegerField() if isinstance(pk, models.IntegerField) else type(pk)()
    return (
        (LegalHold.objects.all() if holds is None else holds)
        .filter(released_at__isnull=True, content_type=ContentType.objects.get_for_model(model))
        .annotate(key=Cast("object_id", output_field=key_type))
        .values("key")
    )


def _cascades(model):
    """(dependant model, foreign key) of every registered model a delete of `model` cascades to."""
    for relation in model._meta.get_fields(include_hidden=True):
        if (
            (relation.one_to_many or relation.one_to_one)
            and relation.auto_created
            and not relation.concrete
            and relation.on_delete is models.CASCADE
            and registry.is_registered(relation.related_model)
        ):
            yield relation.related_model, relation.field


def holds_active(*, restrictions: bool = False) -> bool:
    """Whether any legal hold (with `restrictions`: any restriction) is in force."""
    holds = LegalHold.objects.filter(released_at__isnull=True)
    if restrictions:
        holds = holds.filter(ground__in=RESTRICTION_GROUNDS)
    return holds.exists()


def holds_lock() -> None:
    """Keep new holds out until the current transaction ends (PostgreSQL: a SHARE lock on
    the holds table, which a placed or released hold waits for; readers and other deletes
    go on). A check of the holds made after it stays true until the delete it guards
    commits; a hold placed meanwhile waits and applies from then on."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {LegalHold._meta.db_table} IN SHARE MODE")


def subject_holds(subject) -> models.QuerySet:
    """Active holds and restrictions on a subject as a whole (not on one of their rows)."""
    return LegalHold.objects.filter(
        released_at__isnull=True,
        content_type=ContentType.objects.get_for_model(type(subject)),
        object_id=str(subject.pk),
    )


# Enforcement -----------------------------------------------------------------------------


class ProcessingRestricted(Exception):
    """A change to rows whose processing is restricted (Art. 18) was refused; nothing changed."""


_override: contextvars.ContextVar[str] = contextvars.ContextVar("restriction_override", default="")
# Deletes whose rows were checked as a set (by id, held weakly): their collector's per-row
# signals pass, so a delete of many rows costs one check, not one per row.
_checked: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


@contextmanager
def restriction_override(*, reason: str):
    """Let the block change restricted rows: for the services that answer or lift a
    restriction, never for routine work. The reason is required."""
    if not (reason or "").strip():
        raise ValueError("Changing restricted data needs a reason.")
    token = _override.set(reason)
    try:
        yield
    finally:
        _override.reset(token)


def _applies(model) -> bool:
    entry = registry.get(model)
    return entry is not None and entry.restriction_applies and not _override.get()


def _mark(origin) -> None:
    _checked[id(origin)] = origin


def _was_checked(origin) -> bool:
    return _checked.get(id(origin)) is origin


def _restrictions():
    return LegalHold.objects.filter(ground__in=RESTRICTION_GROUNDS)


def restriction_refuse(queryset, *, doing: str, dependants: int = 0) -> None:
    """Raise ProcessingRestricted when `queryset` holds a row whose processing is restricted
    (on its subject or on itself; with `dependants`, also on what a delete cascades to).
    One query, whatever the number of rows."""
    model = queryset.model
    if not _applies(model) or not holds_active(restrictions=True):
        return
    restricted = held_q(model, dependants=dependants, holds=_restrictions())
    count = model._base_manager.filter(restricted, pk__in=queryset.values("pk")).count()
    if count:
        names = model._meta.verbose_name if count == 1 else model._meta.verbose_name_plural
        raise ProcessingRestricted(
            f"Cannot {doing} {count} {names}: processing of their "
            "data is restricted (GDPR Art. 18), on their subject or on themselves. Lift the "
            "restriction first, or change the record from its own admin page with a reason."
        )


class RestrictedQuerySet(models.QuerySet):
    """A queryset whose ``update()`` and ``delete()`` refuse rows under a restriction."""

    def update(self, **kwargs):
        restriction_refuse(self, doing="change")
        return super().update(**kwargs)

    update.alters_data = True

    def delete(self):
        restriction_refuse(self, doing="delete", dependants=2)
        _mark(self)
        return super().delete()

    delete.alters_data = True
    delete.queryset_only = True


def _refuse_save(sender, instance, raw=False, **kwargs):
    if raw or instance._state.adding or instance.pk is None:
        return  # a fixture load, or a new row: storage
    restriction_refuse(sender._base_manager.filter(pk=instance.pk), doing="change")


def _refuse_delete(sender, instance, origin=None, **kwargs):
    if not _applies(sender) or (origin is not None and _was_checked(origin)):
        return
    if isinstance(origin, models.QuerySet | models.Model):
        rows = origin
        if isinstance(origin, models.Model):
            rows = type(origin)._base_manager.filter(pk=origin.pk)
        if _applies(rows.model):  # the rows it started from, and what they cascade to
            restriction_refuse(rows, doing="delete", dependants=2)
            _mark(origin)
            return
    restriction_refuse(sender._base_manager.filter(pk=instance.pk), doing="delete")


def restriction_connect() -> None:
    """Connect the save and delete guards to every registered model (after autodiscovery)."""
    for entry in registry.entries():
        uid = f"retention.restriction:{entry.label}"
        pre_save.connect(_refuse_save, sender=entry.model, dispatch_uid=uid)
        pre_delete.connect(_refuse_delete, sender=entry.model, dispatch_uid=uid)
