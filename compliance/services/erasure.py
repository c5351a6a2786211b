"""Erasure (Art. 17): anonymise or delete per the registry, scrub history, certify."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from retention.services import rows_delete
from versions.context import change_context
from versions.ledger import ledger_append
from versions.models import LedgerAction
from versions.setbased import history_model_of, rows_update_with_history

from ..anonymisers import REDACTED, keyed_sha256_text
from ..models import (
    ErasureCertificate,
    ErasureLogEntry,
    SubjectExport,
    SubjectRequest,
)
from ..registry import Erasure, registry
from ..selectors import (
    CONTEXT_VALUES,
    ERASURE_LOG_SALT,
    ErasurePlan,
    erasure_plan,
    erasure_scope,
    erasure_targets,
    erasure_values,
    still_personal_q,
    subject_gone,
    subject_identifiers,
    unattended_context_q,
    value_where,
)
from .common import ComplianceRefused, require_perm
from .exports import subject_exports_remove
from .requests import State, answered_request, request_move, requester_tell

# Erasure --------------------------------------------------------------------------------
# Art. 17: anonymise or delete per the registry, scrub the same fields in every history row,
# leave what a hold or a legal ground keeps, and certify it. One transaction.

ERASE_PERMISSION = "compliance.run_erasure_erasurecertificate"
NOTHING_LEFT = "Nothing left to erase"
COUNTED = ("anonymised", "deleted", "history_scrubbed", "admin_log_scrubbed", "kept")


@dataclass(frozen=True)
class ErasureResult:
    """What an erasure did. `certificate` is None when there was nothing left to erase."""

    plan: ErasurePlan
    certificate: ErasureCertificate | None
    counts: dict[str, dict] = dataclasses.field(default_factory=dict)
    #: Exports of the subject written to files outside the export directory (export_subject
    #: --output): their files must be deleted by whoever keeps them.
    exports_elsewhere: list[int] = dataclasses.field(default_factory=list)

    @property
    def nothing_left(self) -> bool:
        return self.certificate is None

    @property
    def message(self) -> str:
        """One sentence for the officer: what changed, what stays and why."""
        kept = self.plan.kept_total
        restricted = self.plan.restricted
        stays = ""
        if kept:
            stays = f"; {kept} row(s) kept by a legal hold or legal ground"
            if restricted:
                stays += f", {restricted} of them restricted (Art. 18) and skipped"
        if self.nothing_left and restricted:
            return (
                f"Nothing erased: {restricted} row(s) of this subject are restricted (Art. 18) "
                "and were skipped; lift the restriction to erase them."
            )
        if self.nothing_left and self.plan.history_kept and not kept:
            # A subject whose row is gone, their history held: say it is kept, not gone.
            return (
                f"{NOTHING_LEFT}: {self.plan.history_kept} history row(s) still hold this "
                "subject's data, kept by a legal hold, a restriction (Art. 18) or a legal "
                "ground; release it to erase them."
            )
        if self.nothing_left:
            return f"{NOTHING_LEFT}: no row or history row still holds this subject's data{stays}."
        totals = self.certificate.totals
        elsewhere = ""
        if self.exports_elsewhere:
            ids = ", ".join(f"#{pk}" for pk in self.exports_elsewhere)
            elsewhere = (
                f" Export(s) {ids} were written by export_subject to files of their own: "
                "delete those files, they still hold this subject's data."
            )
        return (
            f"Erased: {totals['anonymised']} row(s) anonymised, {totals['deleted']} deleted, "
            f"{totals['history_scrubbed']} history row(s) scrubbed{stays}. "
            f"Certificate #{self.certificate.pk}.{elsewhere}"
        )


def subject_erase(
    *,
    subject,
    actor,
    reason: str,
    plan_hash: str | None = None,
    request: SubjectRequest | None = None,
) -> ErasureResult:
    """Erase everything the registry finds about `subject`, in one transaction.

    Per the registry each model's rows are anonymised or deleted (set-based, with their
    history rows); then the same personal fields are scrubbed in every history row about the
    subject, the snapshots just written included. Rows a legal hold or a restriction keeps,
    and their history rows, are left; so are rows the registry retains for a legal ground.
    Writes a certificate, a keyed hash of the subject's identifiers (the erasure log) and a
    ledger entry, none holding personal data. With `plan_hash` (from the preview) the erasure
    is refused if the plan has changed since; with `request`, the certificate names the
    request it answers. Running it again changes nothing and writes nothing: the result says
    there is nothing left to erase.
    """
    require_perm(actor, ERASE_PERMISSION, "erase data subjects")
    if not (reason or "").strip():
        raise ComplianceRefused(
            "Give the reason for the erasure (for instance the request it answers): it goes "
            "on the certificate and in the ledger. Leave personal data out of it."
        )
    model = registry.subject_model()
    if not isinstance(subject, model):
        raise ComplianceRefused(f"Only a {model._meta.verbose_name} can be erased.")
    answered_request(request, subject, what="erasure", reason=reason)
    with change_context(user=actor, reason=reason), transaction.atomic():
        # Two erasures of one subject run one after the other.
        list(model._base_manager.select_for_update().filter(pk=subject.pk).values("pk"))
        # Locked: a request rejected meanwhile is answered by nothing.
        request = answered_request(request, subject, what="erasure", reason=reason, lock=True)
        history = history_model_of(model)
        if subject_gone(subject) and history is not None:  # no row: lock its history rows
            rows = history._base_manager.select_for_update()
            list(rows.filter(**{model._meta.pk.attname: subject.pk}).values("pk"))
        plan = erasure_plan(subject)
        if plan_hash and plan_hash != plan.hash:
            raise ComplianceRefused(
                "The subject's data changed since the preview: review the plan again."
            )
        if not plan.changes:
            return ErasureResult(plan=plan, certificate=None)
        identifiers = subject_identifiers(subject)  # before the emails are anonymised
        counts = {}
        for step in plan.steps:
            admin_log = _scrub_admin_log(step)  # while the rows it names still exist
            counts[step.label] = {**_erase_rows(step), "admin_log_scrubbed": admin_log}
        # After every change, so the snapshots the deletes and updates wrote are scrubbed too.
        for step in plan.steps:
            counts[step.label]["history_scrubbed"] = _scrub_history(step)
        # Stored export ZIPs are copies too: their files go when this transaction commits.
        exports = subject_exports_remove(subject=subject)
        # Exports written by export_subject to a path of its own are out of reach: say so.
        elsewhere = list(
            SubjectExport.objects.filter(
                subject_key=str(subject.pk), status=SubjectExport.Status.DONE, filename=""
            ).values_list("pk", flat=True)
        )
        certificate = _certify(
            subject, plan, counts, actor, reason, identifiers, exports, request=request
        )
        if request is not None:  # the erasure is the answer: the request is complete
            now = timezone.now()
            request_move(
                request,
                actor=actor,
                reason=f"Answered by erasure certificate #{certificate.pk}",
                transition="complete",
                to=State.COMPLETED,
                details={"certificate": certificate.pk},
                started_at=request.started_at or now,
                completed_at=now,
            )
            # The person hears what was done in counts only: the certificate's, no data.
            requester_tell(
                request,
                "completed",
                certificate=certificate.pk,
                erased={k: sum(c[k] for c in counts.values()) for k in COUNTED},
            )
    return ErasureResult(
        plan=plan, certificate=certificate, counts=counts, exports_elsewhere=elsewhere
    )


def _erase_rows(step) -> dict:
    rows, _ = erasure_targets(step.walked)
    counts = {
        "action": str(step.action),
        "anonymised": 0,
        "deleted": 0,
        "history_scrubbed": 0,
        "kept": step.kept_total,
        "grounds": sorted(step.kept),
    }
    if step.action == Erasure.ANONYMISE and step.to_change:
        values = erasure_values(step.entry, step.walked.model, step.walked.subject_pk)
        if values:
            counts["anonymised"] = rows_update_with_history(rows, values)
    elif step.action == Erasure.DELETE and step.to_change:
        counts["deleted"] = rows_delete(step.walked.model, rows)
    return counts


def _scrub_admin_log(step) -> int:
    """Django's admin log keeps the text the admin showed for an object (a customer's name
    and email): replace it for every row and history row the erasure takes."""
    if step.action == Erasure.RETAIN or not apps.is_installed("django.contrib.admin"):
        return 0
    from django.contrib.admin.models import LogEntry

    model = step.walked.model
    rows, history = erasure_scope(step.walked)
    keys = rows.annotate(_key=Cast("pk", TextField())).values("_key")
    entries = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(model))
    q = Q(object_id__in=keys)
    if history is not None:
        record_key = model._meta.pk.attname
        q |= Q(object_id__in=history.annotate(_key=Cast(record_key, TextField())).values("_key"))
    return entries.filter(q).exclude(object_repr=REDACTED).update(object_repr=REDACTED)


def _scrub_history(step) -> int:
    """One UPDATE of the subject's history rows: their personal fields where they still hold
    personal data (a hash is not hashed again), and where a change came from on the rows no
    staff member made (the subject's own IP and browser). Returns the rows it changed."""
    _, history = erasure_targets(step.walked)
    if history is None:
        return 0
    opts = history.model._meta
    values = erasure_values(step.entry, history.model, step.walked.subject_pk)
    personal = still_personal_q(step.entry, history.model, step.walked.subject_pk)
    if personal:  # empty: nothing settles, every row is rewritten
        values = {
            name: value_where(personal, value, opts.get_field(name))
            for name, value in values.items()
        }
    unattended = unattended_context_q(history.model)
    if unattended is not None:
        values |= {
            name: value_where(unattended, value, opts.get_field(name))
            for name, value in CONTEXT_VALUES.items()
        }
    return history.order_by().update(**values) if values else 0


def _certify(
    subject, plan, counts, actor, reason, identifiers, exports, *, request=None
) -> ErasureCertificate:
    changed = {
        label: {k: c[k] for k in COUNTED}
        for label, c in counts.items()
        if any(c[k] for k in COUNTED)
    }
    entry = ledger_append(
        action=LedgerAction.ERASURE,
        actor=actor,
        reason=reason,
        target=plan.subject_model,
        counts=changed,
        details={
            "plan_hash": plan.hash,
            "subject_ref": plan.subject_ref,
            "exports_removed": exports,
            "request": request.pk if request is not None else None,
        },
    )
    certificate = ErasureCertificate.objects.create(
        created_at=timezone.now(),
        subject_model=plan.subject_model,
        subject_ref=plan.subject_ref,
        plan_hash=plan.hash,
        counts=counts,
        actor=actor,
        actor_label=str(actor) if actor is not None else "system",
        reason=reason,
        request=request,
        ledger_entry=entry,
    )
    ErasureLogEntry.objects.bulk_create(
        ErasureLogEntry(
            certificate=certificate,
            kind=kind,
            digest=keyed_sha256_text(value, salt=ERASURE_LOG_SALT),
        )
        for kind, values in identifiers.items()
        for value in sorted(values)
    )
    return certificate
