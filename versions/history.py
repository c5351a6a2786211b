"""History with context: django-simple-history, extended with who/where/why columns.

Every model holding personal data or policy declares ``history = TrackedHistory()``.
Each history row then carries the user's id (``history_user_id``; ``history_user`` looks
the user up), the client IP, user agent, request id, task id, the command or task that
acted and the reason (simple-history's ``history_change_reason``), all read from
`versions.context`.
"""

from __future__ import annotations

import copy
import functools
import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.manager import HistoryDescriptor
from simple_history.models import HistoricalRecords
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from .context import context_value, current

__all__ = [
    "HistoryContextFields",
    "TrackedHistory",
    "history_options",
    "bulk_create_with_context",
    "bulk_update_with_context",
]


class HistoryContextFields(models.Model):
    """Columns added to every history table (``history_user`` and reason come built in).

    Each defaults to the change context in force, so every way simple-history creates a
    history row (a save, a delete, ``bulk_create_with_history``) fills them.
    """

    history_channel = models.CharField(
        "channel",
        max_length=150,
        blank=True,
        default=functools.partial(context_value, "channel"),
        help_text="Command or task that made the change.",
    )
    history_ip = models.GenericIPAddressField(
        "IP address", null=True, blank=True, default=functools.partial(context_value, "ip")
    )
    history_user_agent = models.CharField(
        "user agent",
        max_length=512,
        blank=True,
        default=functools.partial(context_value, "user_agent"),
    )
    history_request_id = models.CharField(
        "request id",
        max_length=64,
        blank=True,
        default=functools.partial(context_value, "request_id"),
    )
    history_task_id = models.CharField(
        "task id", max_length=64, blank=True, default=functools.partial(context_value, "task_id")
    )

    class Meta:
        abstract = True


def _records_who_acted(field) -> bool:
    """Whether a tracked model's foreign key records which staff member acted: it points at
    the user model and has no reverse relation (``related_name="+"``)."""
    related = field.remote_field.model
    label = related if isinstance(related, str) else related._meta.label
    return label.lower() == settings.AUTH_USER_MODEL.lower() and field.remote_field.hidden


def _context_user(request=None, **kwargs):
    return current().authenticated_user


class _HistoryDescriptor(HistoryDescriptor):
    """simple-history's descriptor with its manager class built once, not per access.

    ``HistoryDescriptor.__get__`` calls ``Manager.from_queryset()`` (which creates a class)
    on every ``obj.history``, and each tracked save makes one such access: measured at
    about a quarter of a tracked save.
    """

    def __init__(self, model, manager, queryset):
        super().__init__(model, manager=manager, queryset=queryset)
        self._manager_class = manager.from_queryset(queryset)

    def __get__(self, instance, owner):
        return self._manager_class(self.model, instance)


class TrackedHistory(HistoricalRecords):
    """`HistoricalRecords` with the context columns and the context's user and reason.

    Every history row is written by simple-history's own `create_historical_record`
    (history model instance, its signals, its ``save()``); this class only chooses the
    columns, their defaults and the indexes, builds the history manager class once, and
    leaves out empty versions.

    No empty versions: a ``save()`` that changes no tracked field writes no history row, so
    history grows with changes, not with saves. An instance remembers the tracked values it
    was loaded (or last saved) with, and a save compares against them: no query. A field
    that was not loaded (``only()``/``defer()``) counts as changed. Fields a save always
    touches (``auto_now``, and those named in `ignore_changes_to`, such as an
    ``updated_at`` set by ``save()``) are recorded but do not make a version by themselves.
    Pass ``unchanged_saves=True`` to record every save of a model.
    """

    def __init__(self, *, unchanged_saves: bool = False, ignore_changes_to=(), **kwargs):
        self.unchanged_saves = unchanged_saves
        self.ignore_changes_to = frozenset(ignore_changes_to)
        kwargs.setdefault("bases", [HistoryContextFields])
        kwargs.setdefault("get_user", _context_user)
        # A plain id, not a foreign key: deleting a user must not erase (SET_NULL) who made
        # a change, and a commit need not check and lock the user row for each history row.
        kwargs.setdefault("history_user_id_field", models.BigIntegerField(null=True, blank=True))
        # A reason is stored whole, however long (simple-history's default is 100 characters).
        kwargs.setdefault("history_change_reason_field", models.TextField(null=True))
        # Every change adds a row: a 32-bit counter would run out on a busy table.
        if not getattr(settings, "SIMPLE_HISTORY_HISTORY_ID_USE_UUID", False):
            kwargs.setdefault("history_id_field", models.BigAutoField(primary_key=True))
        super().__init__(**kwargs)

    def copy_fields(self, model):
        """The tracked model's fields, indexed only where history is looked up.

        simple-history keeps an index on every copied field that was unique or indexed in
        the tracked table (an email, a creation date, who soft-deleted a row, …). Those serve
        the live table's lookups; history is read by record (``id``), by data subject (the
        foreign keys the registry's subject paths follow), by date and by user, whose indexes
        stay. A foreign key that records which staff member acted (to the user model, with no
        reverse relation: ``deleted_by``, a hold's ``placed_by``, a request's ``verified_by``)
        leads to no data subject: its copy is not indexed either. Each index dropped is one
        less write per history row, and less storage.
        """
        fields = super().copy_fields(model)
        for field in fields.values():
            if field.name == model._meta.pk.name:
                continue
            if not field.is_relation or _records_who_acted(model._meta.get_field(field.name)):
                field.db_index = False
        return fields

    def get_meta_options(self, model):
        """simple-history's options, with the indexes the list of all changes filters on:
        by user (newest first) and by creation or deletion (newest first; changes, the
        common case, are found on the date index, so a save maintains no extra index).

        The user index leaves out rows no user made (purges, erasures, backfills, tasks):
        the filter always names a user, and a set-based job writes no entry into it."""
        options = super().get_meta_options(model)
        # Named (a condition needs a name) from the tracked table, within 30 characters.
        digest = hashlib.sha256(model._meta.db_table.encode()).hexdigest()[:6]
        prefix = f"h_{model._meta.model_name[:14]}_{digest}"
        options["indexes"] = (
            *options.get("indexes", ()),
            models.Index(
                fields=["history_user_id", "-history_date"],
                condition=Q(history_user_id__isnull=False),
                name=f"{prefix}_who",
            ),
            models.Index(
                fields=["history_type", "-history_date"],
                condition=~Q(history_type="~"),
                name=f"{prefix}_type",
            ),
        )
        return options

    def finalize(self, sender, **kwargs):
        super().finalize(sender, **kwargs)
        descriptor = sender.__dict__.get(self.manager_name)
        if type(descriptor) is HistoryDescriptor:
            setattr(
                sender,
                self.manager_name,
                _HistoryDescriptor(
                    descriptor.model, descriptor.manager_class, descriptor.queryset_class
                ),
            )
            _OPTIONS[sender] = self
            if not self.unchanged_saves:
                _remember_on_load(sender, self)

    def _compared(self, model) -> tuple[str, ...]:
        """The attnames a change is looked for in: tracked, neither ignored nor auto_now."""
        compared = self.__dict__.get("_compared_attnames")
        if compared is None:
            compared = self._compared_attnames = tuple(
                field.attname
                for field in model._meta.fields
                if field.name not in self.excluded_fields
                and field.name not in self.ignore_changes_to
                and not getattr(field, "auto_now", False)
            )
        return compared

    def remember(self, instance) -> None:
        """Keep `instance`'s tracked values as they are in the database now."""
        values = instance.__dict__
        instance._history_saved = {
            name: _frozen(values[name]) for name in self._compared(type(instance)) if name in values
        }

    def unchanged(self, instance) -> bool:
        """Whether a save of `instance` changes none of the tracked values it remembers."""
        saved = instance.__dict__.get("_history_saved")
        if saved is None:
            return False
        values = instance.__dict__
        for name in self._compared(type(instance)):
            if name not in saved or name not in values or values[name] != saved[name]:
                return False
        return True

    def get_change_reason_for_object(self, instance, history_type, using):
        return super().get_change_reason_for_object(instance, history_type, using) or (
            current().reason or None
        )

    def create_historical_record(self, instance, history_type, using=None):
        """simple-history's own, after reading back values the database computed.

        A field saved as an SQL expression (``read_at = Now()``, ``F("n") + 1``) still holds
        the expression after ``save()``; copied as is, the history INSERT would evaluate it
        again (a later time, the history table's column). Reading those fields back records
        the value actually stored.
        """
        if history_type != "-":
            values = instance.__dict__
            computed = [
                field.attname
                for field in self.fields_included(instance)
                if hasattr(values.get(field.attname), "resolve_expression")
            ]
            if computed:
                instance.refresh_from_db(using=using, fields=computed)
        if self.unchanged_saves:
            super().create_historical_record(instance, history_type, using)
            return
        if history_type == "~" and self.unchanged(instance):
            return  # no empty versions
        super().create_historical_record(instance, history_type, using)
        if history_type != "-":
            self.remember(instance)


_OPTIONS: dict[type[models.Model], TrackedHistory] = {}


def history_options(model: type[models.Model]) -> TrackedHistory | None:
    """The `TrackedHistory` a model declared, None for a model without one."""
    return _OPTIONS.get(model)


def _frozen(value):
    """A copy of a mutable value (a JSON dict or list), so that changing it in place still
    counts as a change."""
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value


def _remember_on_load(model, history: TrackedHistory) -> None:
    """Make `model.from_db` remember the tracked values each loaded instance starts with."""
    loader = model.from_db.__func__

    def from_db(cls, db, field_names, values):
        instance = loader(cls, db, field_names, values)
        if cls is model:
            history.remember(instance)
        return instance

    model.from_db = classmethod(from_db)


def _bulk_history_kwargs() -> dict:
    """simple-history's bulk arguments that carry the change context's user and reason.

    The context columns fill themselves: they default to the context.
    """
    ctx = current()
    return {"default_user": ctx.authenticated_user, "default_change_reason": ctx.reason}


def bulk_create_with_context(objs, model, *, batch_size=500):
    """Insert rows and their history rows set-based, with the change context filled in.

    Each object may carry ``_history_date`` to backdate its history row.
    """
    return bulk_create_with_history(objs, model, batch_size=batch_size, **_bulk_history_kwargs())


def bulk_update_with_context(objs, model, fields, *, batch_size=500):
    """Update rows and insert their history rows set-based, with the change context."""
    return bulk_update_with_history(
        objs, model, fields, batch_size=batch_size, **_bulk_history_kwargs()
    )
