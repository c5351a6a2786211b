"""Celery tasks of the operations app: backups, their checks and their cleanup. Each takes
ids, loads, calls one service; the change context comes from the task (versions.tasks)."""

import logging

from celery import shared_task

from versions.context import current

from .backups import backup_create, backup_verify, backups_cleanup
from .config import backup_dir
from .models import Backup

logger = logging.getLogger(__name__)


@shared_task
def backup_create_task(tier: str = "daily") -> dict:
    """Write a backup of `tier` (the admin's "Start a backup", and beat)."""
    ctx = current()
    backup = backup_create(
        tier=tier, actor=ctx.authenticated_user, reason=ctx.reason or f"scheduled {tier} backup"
    )
    return {"backup": backup.pk, "file": backup.file, "size": backup.size}


@shared_task
def backup_verify_task(backup_id: int, drill: bool = False) -> dict:
    """Verify (or drill) one catalogued backup; log an error when it fails."""
    backup = Backup.objects.get(pk=backup_id)
    ctx = current()
    check = backup_verify(
        path=backup_dir() / backup.file,
        drill=drill,
        actor=ctx.authenticated_user,
        reason=ctx.reason or ("drill" if drill else "verify"),
    )
    if not check.ok:
        logger.error("%s of backup %s failed: %s", check.kind, backup.file, check.detail)
    return {"check": check.pk, "ok": check.ok, "detail": check.detail}


@shared_task
def backup_drill_latest_task() -> dict | None:
    """The weekly drill: restore the newest backup into a scratch database and compare."""
    backup = Backup.objects.filter(deleted_at__isnull=True).first()
    if backup is None:
        logger.error("no backup to drill: the catalogue holds no backup file")
        return None
    return backup_verify_task(backup.pk, drill=True)


@shared_task
def backups_cleanup_task() -> dict:
    """Apply tiered retention to the backups (held ones are kept)."""
    ctx = current()
    plan = backups_cleanup(
        actor=ctx.authenticated_user, reason=ctx.reason or "scheduled cleanup", apply=True
    )
    return {
        "deleted": [b.file for b in plan.deleted],
        "held": [b.file for b in plan.held],
        "kept": len(plan.keep),
    }
