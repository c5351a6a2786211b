"""History with context: django-simple-history, extended with who/where/why columns.

Every model holding personal data or policy declares ``history = TrackedHistory()``.
Each history row then carries the user's id (``history_user_id``; ``history_user`` looks
the user up), the client IP, user agent, request id, task id, the command or task that
acted and the reason (simple-history's ``history_change_reason``), all read from
`versions.context`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, models, router, transaction
from django.db.models.signals import post_init, post_save, pre_init, pre_save
from django.utils import timezone
from simple_history.manager import HistoryDescriptor
from simple_history.models import HistoricalRecords, _history_user_setter
from simple_history.signals import post_create_historical_record, pre_create_historical_record
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from .context import context_value, current

__all__ = [
    "HistoryContextFields",
    "TrackedHistory",
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


# How `TrackedHistory` fills each column of a history row on its direct path.
_COPIED, _COMPUTED, _DEFAULT = "copied", "computed", "default"
_COMPUTED_COLUMNS = ("history_date", "history_type", "history_user_id", "history_change_reason")
# pre_save() methods that, with auto_now off, just return the attribute: the direct path
# may skip them. Any other pre_save() (a custom field's) sends the row through save().
_PLAIN_PRE_SAVE = {
    models.Field.pre_save,
    models.DateField.pre_save,
    models.DateTimeField.pre_save,
    models.TimeField.pre_save,
}


@dataclass(frozen=True)
class _InsertPlan:
    sql: str
    columns: tuple[tuple[models.Field, str], ...]  # (history field, _COPIED/_COMPUTED/_DEFAULT)


class TrackedHistory(HistoricalRecords):
    """`HistoricalRecords` with the context columns and the context's user and reason.

    A tracked save writes its history row with one INSERT built once per history model,
    instead of instantiating a history model and saving it through the ORM: the same
    row, with a fraction of the Python work (``make bench`` measures the whole save).
    Whenever anything could observe or alter that path (m2m history, a related-name
    relation, a custom user setter, a field with its own pre_save or SQL placeholder, an
    SQL expression as a value, database routers, or any receiver of the history model's
    init, save or ``*_create_historical_record`` signals), simple-history's own
    `create_historical_record` runs instead.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("bases", [HistoryContextFields])
        kwargs.setdefault("get_user", _context_user)
        # A plain id, not a foreign key: deleting a user must not erase (SET_NULL) who made
        # a change, and a commit need not check and lock the user row for each history row.
        kwargs.setdefault(
            "history_user_id_field", models.BigIntegerField(null=True, blank=True, db_index=True)
        )
        # Every change adds a row: a 32-bit counter would run out on a busy table.
        if not getattr(settings, "SIMPLE_HISTORY_HISTORY_ID_USE_UUID", False):
            kwargs.setdefault("history_id_field", models.BigAutoField(primary_key=True))
        super().__init__(**kwargs)
        self._plans: dict[tuple[type, str], _InsertPlan | None] = {}

    def copy_fields(self, model):
        """The tracked model's fields, indexed only where history is looked up.

        simple-history keeps an index on every copied field that was unique or indexed in
        the tracked table (an email, a creation date, …). Those serve the live table's
        lookups; history is read by record (``id``), by data subject (the foreign keys the
        registry's subject paths follow), by date and by user, whose indexes stay. Each
        index dropped is one less write per tracked save and less storage per history row.
        """
        fields = super().copy_fields(model)
        for field in fields.values():
            if not field.is_relation and field.attname != model._meta.pk.attname:
                field.db_index = False
        return fields

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

    def get_change_reason_for_object(self, instance, history_type, using):
        return super().get_change_reason_for_object(instance, history_type, using) or (
            current().reason or None
        )

    def create_historical_record(self, instance, history_type, using=None):
        history_model = getattr(type(instance), self.manager_name).model
        if router.routers or _observed(history_model):
            return super().create_historical_record(instance, history_type, using)
        alias = (using if self.use_base_model_db else None) or router.db_for_write(history_model)
        plan = self._plans.get((history_model, alias), ...)
        if plan is ...:
            plan = self._insert_plan(instance, history_model, connections[alias])
            self._plans[(history_model, alias)] = plan
        if plan is None:
            return super().create_historical_record(instance, history_type, using)

        # What simple-history's create_historical_record() gives the history instance.
        user = self.get_history_user(instance)
        computed = {
            "history_date": getattr(instance, "_history_date", timezone.now()),
            "history_type": history_type,
            "history_user_id": None if user is None else user.pk,
            "history_change_reason": self.get_change_reason_for_object(
                instance, history_type, using if self.use_base_model_db else None
            ),
        }
        values = []
        for field, source in plan.columns:
            if source == _COPIED:
                value = getattr(instance, field.attname)
                if hasattr(value, "resolve_expression"):  # e.g. read_at = Now(): SQL compiles it
                    return super().create_historical_record(instance, history_type, using)
            elif source == _COMPUTED:
                value = computed[field.attname]
            else:
                value = field.get_default()
            values.append((field, value))
        connection = connections[alias]
        # As Model.save() does: a failed INSERT dooms the enclosing atomic block.
        with transaction.mark_for_rollback_on_error(alias), connection.cursor() as cursor:
            cursor.execute(plan.sql, [f.get_db_prep_save(v, connection) for f, v in values])

    def _insert_plan(self, instance, history_model, connection) -> _InsertPlan | None:
        """The direct INSERT for this history model, or None when only save() is faithful."""
        if (
            self.m2m_fields
            or hasattr(history_model, "history_relation")
            or (self.user_id_field is not None and self.user_setter is not _history_user_setter)
        ):
            return None
        copied = {f.attname for f in self.fields_included(instance)}
        columns = []
        for field in history_model._meta.concrete_fields:
            if field is history_model._meta.auto_field:
                continue  # the database numbers the row
            if (
                getattr(field, "generated", False)
                or field.has_db_default()
                or hasattr(field, "get_placeholder")  # SQL around the value (casts, SRIDs)
                or type(field).pre_save not in _PLAIN_PRE_SAVE
                or getattr(field, "auto_now", False)
                or getattr(field, "auto_now_add", False)
            ):
                return None
            if field.attname in copied:
                columns.append((field, _COPIED))
            elif field.attname in _COMPUTED_COLUMNS:
                columns.append((field, _COMPUTED))
            else:
                columns.append((field, _DEFAULT))
        quote = connection.ops.quote_name
        sql = "INSERT INTO {} ({}) VALUES ({})".format(
            quote(history_model._meta.db_table),
            ", ".join(quote(field.column) for field, _ in columns),
            ", ".join(["%s"] * len(columns)),
        )
        return _InsertPlan(sql, tuple(columns))


def _observed(history_model) -> bool:
    """Whether any receiver would see a history row being created or saved."""
    return any(
        signal.has_listeners(history_model)
        for signal in (
            pre_create_historical_record,
            post_create_historical_record,
            pre_init,
            post_init,
            pre_save,
            post_save,
        )
    )


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
