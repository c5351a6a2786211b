"""History with context: django-simple-history, extended with who/where/why columns.

Every model holding personal data or policy declares ``history = TrackedHistory()``.
Each history row then carries the user (simple-history's ``history_user``), the
client IP, user agent, request id, task id, a system actor label and the reason
(simple-history's ``history_change_reason``), all read from `versions.context`.
"""

from django.db import models
from django.dispatch import receiver
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


def _context_user(request=None, **kwargs):
    return current().authenticated_user


class TrackedHistory(HistoricalRecords):
    """`HistoricalRecords` with the context columns and the context's user and reason."""

    def __init__(self, **kwargs):
        kwargs.setdefault("bases", [HistoryContextFields])
        kwargs.setdefault("get_user", _context_user)
        super().__init__(**kwargs)

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


def bulk_create_with_context(objs, model, *, batch_size=500):
    """Insert rows and their history rows set-based, with the change context filled in.

    Each object may carry ``_history_date`` to backdate its history row.
    """
    ctx = current()
    return bulk_create_with_history(
        objs,
        model,
        batch_size=batch_size,
        default_user=ctx.authenticated_user,
        default_change_reason=ctx.reason,
        custom_historical_attrs=context_attrs(),
    )


def bulk_update_with_context(objs, model, fields, *, batch_size=500):
    """Update rows and insert their history rows set-based, with the change context."""
    ctx = current()
    return bulk_update_with_history(
        objs,
        model,
        fields,
        batch_size=batch_size,
        default_user=ctx.authenticated_user,
        default_change_reason=ctx.reason,
        custom_historical_attrs=context_attrs(),
    )
