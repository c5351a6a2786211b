"""Celery tasks of the retention app: take ids, call one service."""

from celery import shared_task

from versions.context import current

from .models import RetentionPolicy
from .services import PurgeFailed, policy_purge


@shared_task
def purge_policy(policy_id: int, max_seconds: float | None = None) -> dict:
    """Run one policy's purge; several of these may share a policy (SKIP LOCKED). A failed
    run fails the task (its run log says what failed; the log has the traceback)."""
    run = policy_purge(
        policy=RetentionPolicy.objects.get(pk=policy_id),
        actor=current().authenticated_user,  # who queued it ("Run now"); None for beat
        max_seconds=max_seconds,
    )
    if run.status == run.Status.FAILED:
        raise PurgeFailed(f"Purge of policy {run.policy} failed: {run.error}") from run.failure
    return {"run": run.pk, "status": run.status, "purged": run.purged, "backlog": run.backlog}


@shared_task
def purge_scheduled(workers: int = 1) -> list[int]:
    """The daily purge: every enabled policy, each fanned out over `workers` tasks; one whose
    change awaits approval runs its approved values."""
    policies = RetentionPolicy.objects.filter(enabled=True)
    ids = list(policies.values_list("pk", flat=True))
    for policy_id in ids:
        for _ in range(max(1, workers)):
            purge_policy.delay(policy_id)
    return ids
