"""Retention services: soft delete, restore and hard delete of rows; legal holds;
retention policies and their purge.

Each takes the acting user (`actor`, None for the system) and a `reason`, checks the actor's
permission, and runs in one transaction with its history rows and, where the action is
privileged (hard delete, holds, policy changes, purges), its ledger entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone
from django.utils.text import slugify

from compliance.anonymisers import erasure_values, still_personal_q
from compliance.registry import registry
from versions.context import change_context, current
from versions.ledger import ledger_append
from versions.models import LedgerAction
from versions.setbased import rows_delete_with_history, rows_update_with_history

from . import config
from .archive import archive_write
from .engine import batches_planned, batches_run
from .holds import holds_lock
from .models import (
    RESTRICTION_GROUNDS,
    BatchRange,
    LegalHold,
    PolicyAction,
    PurgeRun,
    RetentionPolicy,
)
from .pausepoints import pause_point
from .selectors import held_q, holds_active, policy_scope, policy_validate
from .softdelete import NOT_DELETED, cascade_dependants, is_soft_delete_model

__all__ = [
    "rows_delete",
    "PolicyPending",
    "PurgeFailed",
    "RetentionRefused",
    "RowsResult",
    "hold_place",
    "hold_release",
    "policy_approve",
    "policy_purge",
    "policy_save",
    "runs_close_interrupted",
    "rows_hard_delete",
    "rows_restore",
    "rows_soft_delete",
]


logger = logging.getLogger(__name__)


class RetentionRefused(Exception):
    """The operation was refused and changed nothing; the message says why and what to do."""


class PolicyPending(RetentionRefused):
    """The policy is not in effect (new, or disabled) and its change awaits a second officer's
    approval: purges refuse it until then. An approved policy with a pending change runs."""


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
        try:
            with transaction.atomic():
                total, per_model = deleted.restore()
        except IntegrityError as exc:
            raise RetentionRefused(
                f"Cannot restore these {model._meta.verbose_name_plural} together: they (or "
                "rows restored with them) would share a value that must be unique. Restore "
                "them one at a time, changing the clashing value first."
            ) from exc
    return RowsResult(total, per_model)


def rows_hard_delete(*, queryset, actor, reason: str) -> RowsResult:
    """Delete rows for good (live or soft-deleted), with a ledger entry; never the data."""
    model = queryset.model
    _require(actor, model, "hard_delete" if is_soft_delete_model(model) else "delete")
    manager = model.all_objects if is_soft_delete_model(model) else model._base_manager
    rows = manager.filter(pk__in=queryset.values("pk"))
    with change_context(user=actor, reason=reason), transaction.atomic():
        # Checked in the delete's transaction, the holds locked against new ones until it
        # commits; held_q covers rows the cascade would reach.
        holds_lock()
        held = rows.filter(held_q(model)).count()
        if held:
            raise RetentionRefused(
                f"{held} of these {model._meta.verbose_name_plural} are under a legal hold, "
                "or something they hold together is: release the hold first, or leave them out."
            )
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


# Legal holds ---------------------------------------------------------------------------


def hold_place(*, record, reason: str, ground: str, actor, requested_by: str = "") -> LegalHold:
    """Hold a record (or, for a row of the subject model, everything about that person).

    A hold on an Art. 18 ground is a restriction of processing: it keeps the rows as any
    hold does, and changes to them need an officer's reason. It records who asked for it.
    """
    _require(actor, LegalHold, "add")
    if not reason.strip():
        raise RetentionRefused("Give the reason for the hold: it is shown wherever it applies.")
    if ground not in LegalHold.Ground.values:
        raise RetentionRefused(
            f"Unknown ground {ground!r}: choose one of {', '.join(LegalHold.Ground.values)}."
        )
    restriction = ground in RESTRICTION_GROUNDS
    if restriction and not requested_by.strip():
        raise RetentionRefused(
            "Say who asked for the restriction (the data subject, a court, …): Art. 18 "
            "restrictions are made at someone's request."
        )
    content_type = ContentType.objects.get_for_model(type(record))
    with change_context(user=actor, reason=reason), transaction.atomic():
        hold = LegalHold.objects.create(
            content_type=content_type,
            object_id=str(record.pk),
            reason=reason,
            ground=ground,
            requested_by=requested_by.strip(),
            placed_by=actor,
            placed_at=timezone.now(),
        )
        ledger_append(
            action=LedgerAction.HOLD_PLACE,
            actor=actor,
            reason=reason,
            target=f"{content_type.app_label}.{content_type.model}:{record.pk}",
            details={"hold": hold.pk, "ground": ground, "restriction": restriction},
        )
    return hold


def hold_release(*, hold: LegalHold, reason: str, actor) -> LegalHold:
    """Release an active hold; the rows it kept become purgeable again."""
    _require(actor, LegalHold, "change")
    if not hold.is_active:
        raise RetentionRefused(f"{hold} was already released on {hold.released_at:%Y-%m-%d}.")
    if not reason.strip():
        raise RetentionRefused("Give the reason for releasing the hold.")
    with change_context(user=actor, reason=reason), transaction.atomic():
        hold.released_at = timezone.now()
        hold.released_by = actor
        hold.release_reason = reason
        hold.save(update_fields=["released_at", "released_by", "release_reason"])
        ledger_append(
            action=LedgerAction.HOLD_RELEASE,
            actor=actor,
            reason=reason,
            target=f"{hold.content_type.app_label}.{hold.content_type.model}:{hold.object_id}",
            details={"hold": hold.pk, "restriction": hold.is_restriction},
        )
    return hold


# Purge ---------------------------------------------------------------------------------


class PurgeFailed(Exception):
    """A purge run failed; its run log says what failed and what to do (a task re-raises it)."""


def policy_purge(
    *,
    policy: RetentionPolicy,
    actor,
    reason: str = "",
    dry_run: bool = False,
    batch_size: int | None = None,
    max_seconds: float | None = None,
    max_rows: int | None = None,
    progress: bool | None = None,
) -> PurgeRun:
    """Remove (or anonymise) what `policy` says has expired, minus exclusions and holds.

    Batched through the batch engine. Each batch, in its own transaction: its archive
    (when the policy says so) named by its key range and synced to disk, the delete, a
    ledger entry with its counts and the run log's counts. Runs of the policy whose process
    is gone are first closed as interrupted, and stray partial archives removed. A failure
    stops the run and is logged with it (the traceback in the application log, the run log
    saying what failed): the batches committed before stay done, and the next run goes on
    from where it stopped. The failure is on the returned run (`run.failure`).
    """
    _require(actor, RetentionPolicy, "run_purge")
    # A pending change halts nothing: the row keeps the approved values and they run. Only
    # a policy not in effect whose change waits (a new one, never approved) is refused.
    live = RetentionPolicy.objects.filter(pk=policy.pk).values("enabled", "pending_change")
    if any(row["pending_change"] is not None and not row["enabled"] for row in live):
        raise PolicyPending(
            f"Policy {policy.name!r} is skipped: it is not in effect until a second officer "
            "approves its change (Approve pending changes, in the policy list)."
        )
    if policy.pending_change is not None:  # the caller's copy may hold the proposal
        policy = RetentionPolicy.objects.get(pk=policy.pk)
    try:
        policy_validate(policy)
    except ValidationError as exc:
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        raise RetentionRefused(f"Policy {policy.name!r} cannot run: {problems}") from exc
    batch_size = batch_size or config.batch_size()
    if not dry_run:
        runs_close_interrupted(policy=policy)
        _archive_parts_remove(policy)
    scope = policy_scope(policy)
    run = PurgeRun(
        policy=policy,
        started_at=timezone.now(),
        channel=current().channel,
        status=PurgeRun.Status.DRY_RUN if dry_run else PurgeRun.Status.RUNNING,
        pid=os.getpid(),
        model=policy.target.model_class()._meta.label,
    )
    run.failure = None
    if scope is not None:
        run.cutoff = scope.cutoff
        run.eligible = scope.eligible.count()
        run.held = scope.held.count()
        run.excluded = scope.excluded.count()
    if dry_run and run.eligible:
        run.batches = batches_planned(scope.eligible, batch_size)
    if dry_run or scope is None:
        run.backlog = run.eligible
        run.status = PurgeRun.Status.DRY_RUN if dry_run else PurgeRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        with transaction.atomic():
            run.save()
            if not dry_run:  # a policy that keeps rows forever: run, nothing to remove
                _ledger_run(run, actor, reason, model=policy.target.model_class())
        return run
    with transaction.atomic():
        run.save()
        _run_lock(run)  # before the row is visible: never taken for a run whose process died
    reason = reason or f"Retention policy: {policy.name}"
    try:
        apply, committed, batch_seconds, where = _purge_batch(
            policy, scope.model, run, actor, reason
        )
        with change_context(user=actor, reason=reason):
            try:
                report = batches_run(
                    job=f"purge:policy:{policy.pk}",
                    queryset=scope.eligible,
                    apply=apply,
                    batch_size=batch_size,
                    max_seconds=max_seconds,
                    max_rows=max_rows,
                    on_batch=committed,
                    progress=progress,
                    total=run.eligible,
                )
                run.status = (
                    PurgeRun.Status.SUCCEEDED if report.finished else PurgeRun.Status.PARTIAL
                )
            except Exception as exc:  # logged with its traceback and the run, then returned
                logger.exception("Purge of policy %r (run %s) failed", policy.name, run.pk)
                run.status = PurgeRun.Status.FAILED
                run.error = _failure_text(exc, run, where)
                run.failure = exc
            left = policy_scope(policy).eligible
            if run.status == PurgeRun.Status.SUCCEEDED and report.top is not None:
                left = left.filter(pk__gt=report.top)  # all below was just handled
            run.backlog = left.count()
            run.batch_median_ms = statistics.median(batch_seconds) * 1000 if batch_seconds else None
            run.finished_at = timezone.now()
            with transaction.atomic():
                run.save()
                _ledger_run(run, actor, reason, model=scope.model)
    finally:
        _run_unlock(run)
    return run


def _ledger_run(run: PurgeRun, actor, reason: str, *, model) -> None:
    """The run's closing entry: its totals (the sums of its batches' entries) and status."""
    policy = run.policy
    ledger_append(
        action=LedgerAction.PURGE,
        actor=actor,
        reason=reason or f"Retention policy: {policy.name}",
        target=f"policy:{policy.name}",
        counts={
            "purged": run.purged,
            "archived": run.archived,
            "held": run.held,
            "excluded": run.excluded,
            "backlog": run.backlog,
        },
        details={
            "run": run.pk,
            "status": run.status,
            "model": model._meta.label,
            "batches": run.batches,
        },
    )


def _purge_batch(policy, model, run, actor, reason):
    """What one batch does, inside its transaction: archive, delete or anonymise, the
    batch's ledger entry and the run log's counts; and what a run does after each commit."""

    def apply(batch, span):
        where.update(step="locking", span=span)
        pause_point("claimed")
        holds_lock()  # a hold committed from here on waits for this batch's commit
        if not holds_at_start and holds_active():
            batch = batch.exclude(held_q(model))  # a hold placed since the run started
        if policy.action == PolicyAction.ANONYMISE:
            batch = batch.filter(_still_personal_q(model))
        archive = None
        if policy.archive:
            where["step"] = "archiving"
            # One snapshot of the batch's rows, locked: what is archived is what goes.
            keys = list(batch.select_for_update().values_list("pk", flat=True))
            name = _archive_name(policy, span)
            _archive_range_remove(policy, span)  # an earlier attempt's file, under any name
            if not keys:  # nothing expired here (or all of it held): no archive, nothing to do
                pending[:] = [0, None]
                return {"purged": 0}
            batch = model._base_manager.filter(pk__in=keys)
            archive = {
                **archive_write(batch, config.archive_dir() / name),
                "file": name,
                "range": [span.lo, span.hi],
            }
            pause_point("archived")
        try:
            return _remove_and_record(batch, span, archive)
        except BaseException:
            if archive:  # it lists rows that stay: the range's retry writes it again
                _archive_remove(config.archive_dir() / archive["file"])
            raise

    def _remove_and_record(batch, span, archive):
        where["step"] = "deleting" if policy.action != PolicyAction.ANONYMISE else "anonymising"
        if policy.action == PolicyAction.SOFT_DELETE:
            done, _ = model.all_objects.filter(pk__in=batch.values("pk")).delete()
        elif policy.action == PolicyAction.ANONYMISE:
            done = _anonymise(model, batch)
        else:
            done = rows_delete(model, batch)
        archived = archive["rows"] if archive else 0
        if done or archived:
            where["step"] = "recording"
            ledger_append(
                action=LedgerAction.PURGE_BATCH,
                actor=actor,
                reason=reason,
                target=f"policy:{policy.name}",
                counts={"purged": done, "archived": archived},
                details={
                    "run": run.pk,
                    "range": [span.lo, span.hi],
                    **(
                        {"archive": archive["file"], "sha256": archive["sha256"]} if archive else {}
                    ),
                },
            )
        # The run log follows the work in the batch's transaction, so a killed run's log
        # counts exactly what it committed (its archives listed with the deletes they back).
        archives = [archive] if archive else []
        PurgeRun.objects.filter(pk=run.pk).update(
            purged=run.purged + done,
            archived=run.archived + archived,
            archives=run.archives + archives,
            batches=run.batches + 1,
        )
        pending[:] = [done, archive]
        pause_point("deleted")
        return {"purged": done}

    def committed(report):
        """After a batch commits: only then does the run in memory count it."""
        done, archive = pending
        run.purged += done
        if archive:
            run.archives += [archive]
            run.archived += archive["rows"]
        run.batches += 1
        batch_seconds[:] = report.batch_seconds
        pause_point("committed")

    pending, batch_seconds, where = [0, None], [], {}
    holds_at_start = holds_active()  # then the scope itself leaves held rows out
    return apply, committed, batch_seconds, where


def _still_personal_q(model):
    """Rows an anonymise policy still has to change (the erasure's own test)."""
    return still_personal_q(registry.get(getattr(model, "instance_type", model)), model)


def _failure_text(exc: Exception, run: PurgeRun, where: dict) -> str:
    """What failed, where, and what to do: for the run log, the command and the doctor."""
    span = where.get("span")
    keys = ""
    if span is not None:
        keys = f" of keys above {span.lo} up to {span.hi}" if span.lo else f" up to {span.hi}"
    step = where.get("step", "planning")
    detail = str(exc).strip() or "no message"
    text = (
        f"Stopped while {step} the batch{keys} of {run.policy.target.model_class()._meta.label}"
        f" ({type(exc).__name__}: {detail}). The {run.batches} batch(es) committed before stand"
        f" ({run.purged} rows). "
    )
    if isinstance(exc, OSError) and step == "archiving":
        text += (
            f"Check that the archive directory ({config.archive_dir()}) exists, is writable "
            "and has space, "
        )
    elif isinstance(exc, DatabaseError):
        text += "Check the database (its log names the statement and the cause), "
    else:
        text += "Remove the cause (the application log has the traceback), "
    return text + "then run the policy again: it resumes at this batch."


# Interrupted runs, archives ----------------------------------------------------------------

_RUN_LOCK = 0x8A7C5  # advisory lock namespace: a run's process holds its run's key


def _run_lock(run: PurgeRun) -> None:
    """Hold a session lock on the run while its process lives (PostgreSQL drops it with
    the connection when the process dies, so another process can tell it is gone)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [_RUN_LOCK, run.pk])


def _run_unlock(run: PurgeRun) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_RUN_LOCK, run.pk])


def _run_gone(run: PurgeRun) -> bool:
    """Whether the process of a run still marked running has stopped."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database()) AND classid = %s::oid AND objid = %s::oid "
                "AND objsubid = 2)",
                [_RUN_LOCK, run.pk],
            )
            return cursor.fetchone()[0]
    if run.pid is None:
        return False
    try:
        os.kill(run.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # a process of another user has the number: alive
        return False
    return False


def runs_close_interrupted(*, policy: RetentionPolicy | None = None) -> list[PurgeRun]:
    """Close each run still marked running whose process is gone as interrupted, with the
    counts of the batches it committed, and a ledger entry. Returns the runs closed."""
    running = PurgeRun.objects.filter(status=PurgeRun.Status.RUNNING).select_related("policy")
    if policy is not None:
        running = running.filter(policy=policy)
    closed = []
    for run in running:
        if not _run_gone(run):
            continue
        with transaction.atomic():
            run = PurgeRun.objects.select_for_update().get(pk=run.pk)
            if run.status != PurgeRun.Status.RUNNING:
                continue  # closed by another process meanwhile
            run.status = PurgeRun.Status.INTERRUPTED
            run.finished_at = timezone.now()
            run.backlog = _backlog(run.policy, default=run.backlog)
            run.error = (
                f"Its process (pid {run.pid}) stopped — killed or crashed — after "
                f"{run.batches} committed batch(es) ({run.purged} rows, each batch in the "
                "ledger). Nothing was lost: the next run resumes at the first batch not "
                "committed. If it keeps happening, look for what stops the process (the "
                "system's out-of-memory killer, a deploy restarting workers, a time limit)."
            )
            run.save()
            _ledger_run(
                run,
                None,
                "Run interrupted: its process stopped",
                model=run.policy.target.model_class(),
            )
        closed.append(run)
    return closed


def _backlog(policy: RetentionPolicy, *, default: int) -> int:
    """The policy's eligible rows now; `default` when it keeps rows forever or cannot run
    as written (the doctor says so on its own)."""
    try:
        policy_validate(policy)
    except ValidationError:
        return default
    scope = policy_scope(policy)
    return scope.eligible.count() if scope is not None else 0


def _archive_name(policy: RetentionPolicy, span) -> str:
    """A batch's archive, named by its key range (and the range's id, unique per plan) in
    the policy's folder, named by its key alone: a retried range rewrites its own file,
    whatever the policy is called by then."""
    lo, hi = slugify(span.lo) or "start", slugify(span.hi)
    return f"{policy.pk}/range-{span.pk}-{lo}-{hi}.jsonl.gz"


def _archive_dirs(policy: RetentionPolicy) -> list[Path]:
    """The policy's archive folders: its own, and those named ``{pk}-{name}`` by earlier
    versions (under any name the policy had)."""
    root = config.archive_dir()
    return [d for d in [root / str(policy.pk), *root.glob(f"{policy.pk}-*")] if d.is_dir()]


def _archive_remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".sha256").unlink(missing_ok=True)
    path.with_name(path.name + ".part").unlink(missing_ok=True)


def _archive_range_remove(policy: RetentionPolicy, span) -> None:
    """Remove an earlier attempt's archive of this range, in any of the policy's folders
    (the range is claimed: no other worker writes it)."""
    name = _archive_name(policy, span).rpartition("/")[2]
    for directory in _archive_dirs(policy):
        _archive_remove(directory / name)


def _archive_parts_remove(policy: RetentionPolicy) -> list[Path]:
    """Remove the partial archives (``.part``) a killed run left, but those of ranges still
    pending: their retry writes them again (and a worker may be writing one now)."""
    pending = set(
        BatchRange.objects.filter(job=f"purge:policy:{policy.pk}", done=False).values_list(
            "pk", flat=True
        )
    )
    removed = []
    for part in (p for d in _archive_dirs(policy) for p in d.glob("*.part")):
        match = re.match(r"range-(\d+)-", part.name)
        if match and int(match.group(1)) in pending:
            continue
        part.unlink(missing_ok=True)
        removed.append(part)
    return removed


def rows_delete(model, batch) -> int:
    """Delete rows with their deletion history: set-based when nothing refers to the model,
    else Django's cascade (whose signals write the history). Purges and erasures both."""
    referred = any(
        relation.on_delete is not models.DO_NOTHING
        for relation in model._meta.get_fields(include_hidden=True)
        if relation.auto_created and not relation.concrete and relation.is_relation
    )
    if not referred:
        return rows_delete_with_history(batch)
    deleted, _ = models.QuerySet.delete(batch)
    return deleted


def _anonymise(model, batch) -> int:
    """Anonymise the registry's personal fields of a batch, set-based, with history: the
    erasure's own UPDATE. The batch holds only rows that still hold personal data
    (`_still_personal_q`): a later run leaves rows an earlier one anonymised."""
    values = erasure_values(registry.get(getattr(model, "instance_type", model)), model)
    if not values:
        return 0
    return rows_update_with_history(batch, values)


# Policies ------------------------------------------------------------------------------


# The fields an officer edits; a change to them that needs approval waits as a whole.
_POLICY_FIELDS = (
    "name",
    "target",
    "basis_field",
    "period_days",
    "action",
    "archive",
    "exclusions",
    "enabled",
)
_DESTROYS = (PolicyAction.HARD_DELETE, PolicyAction.ANONYMISE)


def _proposal(policy: RetentionPolicy) -> dict:
    values = {name: getattr(policy, name) for name in _POLICY_FIELDS if name != "target"}
    return {**values, "target": policy.target_id}


def _destroys_history(values: dict) -> bool:
    model = ContentType.objects.get_for_id(values["target"]).model_class()
    return values["enabled"] and values["action"] in _DESTROYS and hasattr(model, "instance_type")


def _why_approval(before: dict | None, after: dict) -> list[str]:
    """What in the change `before` -> `after` needs a second officer (empty: nothing)."""
    reasons = []
    if _destroys_history(after) and (
        before is None
        or not _destroys_history(before)
        or (before["target"], before["action"]) != (after["target"], after["action"])
    ):
        reasons.append("it deletes or anonymises a history table")
    shortened = (
        before is not None
        and after["period_days"] is not None
        and (before["period_days"] is None or after["period_days"] < before["period_days"])
    )
    if shortened:
        reasons.append("it shortens the retention period")
    if before is not None and _destroys_history(after) and _keeps_less(before, after):
        reasons.append("it purges history rows it kept before")
    return reasons


def _keeps_less(before: dict, after: dict) -> bool:
    """A new basis field, or an exclusion removed or changed (an added one keeps more)."""
    kept = after["exclusions"] or []
    return before["basis_field"] != after["basis_field"] or any(
        item not in kept for item in before["exclusions"] or []
    )


def _policy_clean(policy: RetentionPolicy, problem: str = "") -> None:
    try:
        policy.full_clean()
    except ValidationError as exc:
        raise RetentionRefused(problem + "; ".join(exc.messages)) from exc


def policy_save(*, policy: RetentionPolicy, actor, reason: str = "") -> RetentionPolicy:
    """Create or change a policy after validating it; the change is a ledger entry.

    Four eyes: a change that makes the policy delete or anonymise a history table, or that
    shortens its period, does not take effect: it is kept as the policy's pending change,
    with who proposed it, until another officer approves it (`policy_approve`). Until then
    the policy keeps its approved values and purges run them (a new policy is stored
    disabled and purges refuse it). On a policy destroying history, a new basis field or an
    exclusion removed or changed purges sooner too and waits the same way. Any other save
    takes effect at once; a pending change stays pending (it never vanishes unseen), and
    a field the proposal left as it was follows the save (a renamed policy keeps its new
    name when the change is approved). Either way the proposal's fingerprint changes when
    what it would do changes, so an approval page opened before is refused.
    """
    _require(actor, RetentionPolicy, "change" if policy.pk else "add")
    _policy_clean(policy)
    created = policy.pk is None
    with change_context(user=actor, reason=reason), transaction.atomic():
        live = None
        if not created:
            live = RetentionPolicy.objects.select_for_update().get(pk=policy.pk)
        proposed = _proposal(policy)
        needs = _why_approval(None if live is None else _proposal(live), proposed)
        if needs:
            if live is not None:  # the policy keeps its approved values meanwhile
                for name in _POLICY_FIELDS:
                    setattr(policy, name, getattr(live, name))
            else:
                policy.enabled = False
            policy.pending_change = proposed
            policy.proposed_by, policy.proposed_at = actor, timezone.now()
        elif live is not None and live.pending_change is not None:
            policy.pending_change = _proposal_follow(live, proposed)
            policy.proposed_by, policy.proposed_at = live.proposed_by, live.proposed_at
        else:
            policy.pending_change, policy.proposed_by, policy.proposed_at = None, None, None
        policy.save()
        ledger_append(
            action=LedgerAction.POLICY_CHANGE,
            actor=actor,
            reason=reason,
            target=f"policy:{policy.name}",
            details={
                **_policy_details(policy, proposed),
                "created": created,
                "pending_approval": needs,
            },
        )
    return policy


def _proposal_follow(live: RetentionPolicy, saved: dict) -> dict:
    """The pending proposal of `live` after a save of `saved` that needs no approval: each
    field the proposal changes keeps the proposed value, each it left as it was follows
    the save."""
    before, change = _proposal(live), dict(live.pending_change)
    return {
        name: saved[name] if change[name] == before[name] else change[name]
        for name in _POLICY_FIELDS
    }


def policy_fingerprint(policy: RetentionPolicy) -> str:
    """A digest of the policy's pending change as stored ("" when none): an approval names
    the fingerprint of the change its officer saw, and a change since is refused."""
    if policy.pending_change is None:
        return ""
    text = json.dumps(
        {"policy": policy.pk, "change": policy.pending_change},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _policy_details(policy: RetentionPolicy, values: dict) -> dict:
    target = ContentType.objects.get_for_id(values["target"])
    return {
        "policy": policy.pk,
        "model": f"{target.app_label}.{target.model}",
        "period_days": values["period_days"],
        "action": values["action"],
        "archive": values["archive"],
        "enabled": values["enabled"],
        # Which fields and lookups, never the values (they may name a person).
        "exclusions": [f"{e['field']}__{e['lookup']}" for e in values["exclusions"]],
    }


def policy_approve(
    *, policy: RetentionPolicy, actor, expected: str, reason: str = ""
) -> RetentionPolicy:
    """Give effect to the policy's pending change, as an officer other than the one who
    proposed it; the approval is a ledger entry naming both.

    `expected` is the `policy_fingerprint` of the change the officer was shown: when the
    pending change is no longer that one, nothing is approved and nothing is recorded."""
    _require(actor, RetentionPolicy, "change")
    if actor is None:
        raise RetentionRefused("A pending policy change is approved by an officer, by name.")
    with change_context(user=actor, reason=reason), transaction.atomic():
        policy = RetentionPolicy.objects.select_for_update().get(pk=policy.pk)
        if policy.pending_change is None:
            raise RetentionRefused(f"Policy {policy.name!r} has no change awaiting approval.")
        if policy.proposed_by_id == actor.pk:
            raise RetentionRefused(
                f"You proposed the change to policy {policy.name!r}: another officer approves it."
            )
        if not expected or policy_fingerprint(policy) != expected:
            raise RetentionRefused(
                f"The change to policy {policy.name!r} is not the one you were shown: it was "
                "changed since. Nothing was approved; review the change as it is now."
            )
        values = dict(policy.pending_change)
        proposer = policy.proposed_by.get_username() if policy.proposed_by else "system"
        for name in _POLICY_FIELDS:
            setattr(policy, "target_id" if name == "target" else name, values[name])
        _policy_clean(policy, f"The change to policy {policy.name!r} cannot take effect: ")
        policy.pending_change, policy.proposed_by, policy.proposed_at = None, None, None
        policy.save()
        ledger_append(
            action=LedgerAction.POLICY_APPROVE,
            actor=actor,
            reason=reason,
            target=f"policy:{policy.name}",
            details={
                **_policy_details(policy, values),
                "proposed_by": proposer,
                "fingerprint": expected,
            },
        )
    return policy
