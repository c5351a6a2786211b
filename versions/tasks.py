"""Celery tasks of the versions app, and the signals that give every task a change context."""

import logging

from celery import shared_task
from celery.signals import before_task_publish, task_postrun, task_prerun
from django.contrib.auth import get_user_model

from .context import change_context, current
from .ledger import ledger_verify

logger = logging.getLogger(__name__)

_HEADER = "change_context"
_open_contexts: dict[str, object] = {}


@shared_task
def ledger_verify_scheduled():
    """Verify the ledger's chain and record its head; log an error naming what is broken."""
    ctx = current()
    report = ledger_verify(actor=ctx.authenticated_user, reason=ctx.reason or "scheduled")
    if not report.ok:
        logger.error("ledger broken at entry #%s: %s", report.broken_id, report.problem)
    return {
        "ok": report.ok,
        "checked": report.checked,
        "broken_id": report.broken_id,
        "head": report.head,
    }


@before_task_publish.connect
def _send_context(headers=None, **kwargs):
    """Carry the enqueuing user, reason and request id to the worker."""
    ctx = current()
    user = ctx.authenticated_user
    headers[_HEADER] = {
        "user_id": user.pk if user is not None else None,
        "channel": ctx.channel,
        "reason": ctx.reason,
        "request_id": ctx.request_id,
    }


@task_prerun.connect
def _enter_context(task_id=None, task=None, **kwargs):
    sent = getattr(task.request, _HEADER, None) or {}
    user = None
    if sent.get("user_id") is not None:
        user = get_user_model().objects.filter(pk=sent["user_id"]).first()
    manager = change_context(
        user=user,
        channel=f"task:{task.name}",
        reason=sent.get("reason"),
        request_id=sent.get("request_id"),
        task_id=task_id,
    )
    manager.__enter__()
    _open_contexts[task_id] = manager


@task_postrun.connect
def _exit_context(task_id=None, **kwargs):
    manager = _open_contexts.pop(task_id, None)
    if manager is not None:
        manager.__exit__(None, None, None)
