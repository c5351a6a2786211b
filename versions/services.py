"""Record versions: restore a record to one of its versions, recover a hard-deleted record
from its delete snapshot. Both are previewed first (versions/selectors.py), write new versions
with the reason and a ledger entry."""

from django.core.exceptions import PermissionDenied
from django.db import transaction

from .context import change_context
from .ledger import ledger_append
from .models import LedgerAction
from .selectors import RestoreRefused, recover_preview, restore_preview, snapshot_instance
from .setbased import history_model_of

__all__ = ["record_recover", "version_restore"]


def version_restore(*, record, history_id, actor, reason: str, expected_latest=None):
    """Give `record` the values of its version `history_id`, as a new version with `reason`.

    Refused (RestoreRefused, nothing changed) for a version of another record or an unknown
    one, a preview made stale by a newer version (`expected_latest` is the newest version
    the preview saw), a missing foreign-key target, a unique value taken since, a restricted
    record, or a version with nothing to restore. Personal data erased since is never
    restored. A ledger entry names the record, the version and the fields, never values.
    """
    model = type(record)
    opts = model._meta
    if actor is not None and not actor.has_perm(f"{opts.app_label}.change_{opts.model_name}"):
        raise PermissionDenied(f"Restoring a {opts.verbose_name} needs permission to change it.")
    if not reason.strip():
        raise RestoreRefused("Give the reason for the restore: it is kept with the new version.")
    with change_context(user=actor, reason=reason), transaction.atomic():
        record = model._base_manager.select_for_update().filter(pk=record.pk).first()
        if record is None:
            raise RestoreRefused(
                f"This {opts.verbose_name} no longer exists: recover it instead of restoring."
            )
        preview = restore_preview(record, history_id)
        if expected_latest is not None and str(preview.latest_id) != str(expected_latest):
            raise RestoreRefused(
                f"This {opts.verbose_name} changed after the preview (version "
                f"#{preview.latest_id} is newer): look at the preview again."
            )
        if preview.problems:
            raise RestoreRefused(" ".join(preview.problems))
        for change in preview.changes:
            field = opts.get_field(change.field)
            setattr(record, field.attname, getattr(preview.version, field.attname))
        record.save()
        ledger_append(
            action=LedgerAction.RESTORE,
            actor=actor,
            reason=reason,
            target=f"{opts.label}:{record.pk}",
            counts={"fields": len(preview.changes)},
            details={
                "version": preview.version.pk,
                "fields": [change.field for change in preview.changes],
                "kept_erased": preview.erased,
            },
        )
    return preview


def _record_history_locked(model, history_id) -> None:
    """Lock (FOR UPDATE) the history rows of the record whose version is `history_id`, in
    the order an erasure of a gone subject takes them; an unknown version locks nothing
    (the preview refuses it)."""
    history = history_model_of(model)
    try:
        key = history._meta.pk.to_python(history_id)
    except Exception:
        return
    attname = model._meta.pk.attname
    record = history._base_manager.filter(pk=key).values_list(attname, flat=True).first()
    if record is not None:
        rows = history._base_manager.select_for_update().filter(**{attname: record})
        list(rows.values("pk"))  # in the erasure's order (the default one): no deadlock


def record_recover(*, model, history_id, actor, reason: str):
    """Insert a hard-deleted record again from its delete snapshot, with the rows deleted in
    the same operation, as new versions carrying `reason`; a ledger entry with the counts.

    Refused (RestoreRefused, nothing changed) for a version that is not a deletion, a record
    that exists, a missing foreign-key target or a unique value taken since. What an erasure
    scrubbed from the snapshot stays scrubbed: the snapshot is what is inserted.
    """
    opts = model._meta
    if actor is not None and not actor.has_perm(f"{opts.app_label}.add_{opts.model_name}"):
        raise PermissionDenied(f"Recovering a {opts.verbose_name} needs permission to add one.")
    if not reason.strip():
        raise RestoreRefused("Give the reason for the recovery: it is kept with the record.")
    with change_context(user=actor, reason=reason), transaction.atomic():
        # An erasure of a subject whose row is gone locks their history rows: the snapshot
        # is read once it has committed (scrubbed), never before.
        _record_history_locked(model, history_id)
        preview = recover_preview(model, history_id)
        if preview.problems:
            raise RestoreRefused(" ".join(preview.problems))
        preview.candidate.save(force_insert=True)
        recovered = {opts.label: 1}
        for child_model, snapshot in preview.related:
            snapshot_instance(child_model, snapshot).save(force_insert=True)
            label = child_model._meta.label
            recovered[label] = recovered.get(label, 0) + 1
        ledger_append(
            action=LedgerAction.RECOVER,
            actor=actor,
            reason=reason,
            target=f"{opts.label}:{preview.candidate.pk}",
            counts=recovered,
            details={"version": preview.version.pk},
        )
    return preview
