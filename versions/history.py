"""History with context: django-simple-history, extended with who/where/why columns.

Every model holding personal data or policy declares ``history = TrackedHistory()``.
Each history row then carries the user's id (``history_user_id``; ``history_user`` looks
the user up), the client IP, user agent, request id, task id, the command or task that
acted and the reason (simple-history's ``history_change_reason``), all read from
`versions.context`.
"""

import functools

from django.db import connections, models, router
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from simple_history.manager import HistoryDescriptor
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from .context import current

__all__ = [
    "HistoryContextFields",
    "TrackedHistory",
    "bulk_create_with_context",
    "bulk_update_with_context",
    "context_attrs",
]


class HistoryContextFields(models.Model):
    """Columns added to every history table (``history_user`` and reason come built in)."""

    history_actor = models.CharField(
        "actor", max_length=150, blank=True, help_text="Command or task that made the change."
    )
    history_ip = models.GenericIPAddressField("IP address", null=True, blank=True)
    history_user_agent = models.CharField("user agent", max_length=512, blank=True)
    history_request_id = models.CharField("request id", max_length=64, blank=True)
    history_task_id = models.CharField("task id", max_length=64, blank=True)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        # simple-history inserts every history row through save(); Django's generic insert
        # path costs as much as the tracked UPDATE itself. Same row, same transaction, one
        # cached statement, whenever no receiver listens to this model's save signals.
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        if (
            self._state.adding
            and self.pk is None
            and not args
            and set(kwargs) <= {"using"}
            and connections[using].features.can_return_columns_from_insert
            and _plain_insert(type(self))
            and not pre_save.has_listeners(type(self))
            and not post_save.has_listeners(type(self))
        ):
            _insert(self, using)
        else:
            super().save(*args, **kwargs)


_INSERTS: dict[tuple[type, str], tuple[str, list]] = {}


@functools.cache
def _plain_insert(model) -> bool:
    """True when only the primary key comes back from the database (no generated columns)."""
    return not any(getattr(f, "generated", False) for f in model._meta.concrete_fields) and [
        f.attname for f in model._meta.db_returning_fields
    ] == [model._meta.pk.attname]


def _insert(row: models.Model, using: str) -> None:
    """INSERT one history row with a statement built once per model and database."""
    model, connection = type(row), connections[using]
    cached = _INSERTS.get((model, using))
    if cached is None:
        quote = connection.ops.quote_name
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        sql = "INSERT INTO {} ({}) VALUES ({}) RETURNING {}".format(
            quote(model._meta.db_table),
            ", ".join(quote(f.column) for f in fields),
            ", ".join(["%s"] * len(fields)),
            quote(model._meta.pk.column),
        )
        cached = _INSERTS[(model, using)] = (sql, fields)
    sql, fields = cached
    params = [f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row.pk = cursor.fetchone()[0]
    row._state.adding = False
    row._state.db = using


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
    """`HistoricalRecords` with the context columns and the context's user and reason."""

    def __init__(self, **kwargs):
        kwargs.setdefault("bases", [HistoryContextFields])
        kwargs.setdefault("get_user", _context_user)
        # A plain id, not a foreign key: deleting a user must not erase (SET_NULL) who made
        # a change, and a commit need not check and lock the user row for each history row.
        kwargs.setdefault(
            "history_user_id_field", models.BigIntegerField(null=True, blank=True, db_index=True)
        )
        super().__init__(**kwargs)

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


def context_attrs() -> dict:
    """The context columns' values now, for set-based history writes."""
    ctx = current()
    return {
        "history_actor": ctx.actor,  # the channel (command, task) even when a user is known
        "history_ip": ctx.ip,
        "history_user_agent": ctx.user_agent,
        "history_request_id": ctx.request_id,
        "history_task_id": ctx.task_id,
    }


@receiver(pre_create_historical_record)
def _fill_context(sender, history_instance, **kwargs):
    if isinstance(history_instance, HistoryContextFields):
        for name, value in context_attrs().items():
            setattr(history_instance, name, value)


def _bulk_history_kwargs() -> dict:
    """simple-history's bulk arguments that carry the change context."""
    ctx = current()
    return {
        "default_user": ctx.authenticated_user,
        "default_change_reason": ctx.reason,
        "custom_historical_attrs": context_attrs(),
    }


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
