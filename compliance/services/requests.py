"""Data-subject requests: their states, clocks and extensions, and which request an export
or erasure may answer."""

from __future__ import annotations

from datetime import date, datetime

from django.db import transaction
from django.utils import timezone

from retention.services import _require
from versions.context import change_context
from versions.ledger import ledger_append
from versions.models import LedgerAction

from ..models import (
    Jurisdiction,
    SubjectRequest,
    add_days,
    add_months,
    request_due,
)
from ..registry import registry
from ..selectors import (
    subject_gone,
)
from .common import ComplianceRefused
from .emails import email_send

# Data-subject requests -----------------------------------------------------------------
# received -> verified -> in progress -> completed, or rejected (with its reason) from any
# state before completion. Completed and rejected are final. Each change, creation
# included, is one ledger entry holding the request's id, kind and states: never the
# subject's data.

State = SubjectRequest.State
EXTENSION_LIMITS = {
    Jurisdiction.GDPR: "GDPR Art. 12(3) allows one extension by at most two further months",
    Jurisdiction.CCPA: "the CCPA allows one extension by at most 45 more days",
}
FIRST_PERIOD = {Jurisdiction.GDPR: "first month", Jurisdiction.CCPA: "first 45 days"}


def _shown(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def request_ledger(
    request, *, transition: str, previous: str | None, actor, reason: str, **details
):
    ledger_append(
        action=LedgerAction.REQUEST,
        actor=actor,
        reason=reason,
        target=f"request #{request.pk}",
        details={
            "request": request.pk,
            "kind": request.kind,
            "jurisdiction": request.jurisdiction,
            "transition": transition,
            "from": previous,
            "to": request.state,
            "due_at": request.due_at.isoformat(),
            **details,
        },
    )


def _locked(request: SubjectRequest) -> SubjectRequest:
    """The request re-read under a row lock: two officers acting at once take turns."""
    locked = SubjectRequest.objects.select_for_update().get(pk=request.pk)
    if locked.is_final:
        raise ComplianceRefused(
            f"{locked} is {locked.get_state_display().lower()}, which is final: nothing can "
            "change it. If the subject asks again, record a new request."
        )
    return locked


def _transition(
    request, *, actor, reason: str, transition: str, to: str, allowed: tuple, refusal: str, **values
):
    """Move `request` to `to` from one of the `allowed` states (else refuse with `refusal`),
    set `values`, and write its ledger entry; all in one transaction."""
    _require(actor, SubjectRequest, "change")
    with change_context(user=actor, reason=reason), transaction.atomic():
        locked = _locked(request)
        if locked.state not in allowed:
            raise ComplianceRefused(
                refusal.format(request=locked, state=locked.get_state_display().lower())
            )
        request_move(locked, actor=actor, reason=reason, transition=transition, to=to, **values)
    return locked


def requester_tell(request: SubjectRequest, kind: str, **context) -> None:
    """Email the requester (a request from the privacy center) that `kind` happened."""
    if request.channel == SubjectRequest.Channel.CENTER and request.contact_email:
        email_send(request=request, kind=kind, context=context, language=request.language or "en")


def request_move(locked, *, actor, reason: str, transition: str, to: str, details=None, **values):
    """Set `locked` (a request under its row lock) to state `to` and `values`, and write the
    step's ledger entry; the caller's transaction holds both."""
    previous = locked.state
    locked.state = to
    for name, value in values.items():
        setattr(locked, name, value)
    locked.save()
    request_ledger(
        locked,
        transition=transition,
        previous=previous,
        actor=actor,
        reason=reason,
        **(details or {}),
    )


def request_create(
    *,
    subject,
    kind: str,
    jurisdiction: str,
    actor,
    reason: str = "",
    received_at: datetime | None = None,
    channel: str = SubjectRequest.Channel.ADMIN,
    contact_email: str = "",
    details: str = "",
    language: str = "",
) -> SubjectRequest:
    """Record a request received at `received_at` (default now); its clock starts then.

    From the privacy center (`channel`) the subject may be None (we hold nothing under the
    address given); `contact_email` is where we answer, `details` what to correct."""
    _require(actor, SubjectRequest, "add")
    subject_model = registry.subject_model()
    from_center = channel == SubjectRequest.Channel.CENTER
    if not isinstance(subject, subject_model) and not (from_center and subject is None):
        raise ComplianceRefused(
            f"Choose the {subject_model._meta.verbose_name} the request is about."
        )
    if kind not in SubjectRequest.Kind.values:
        raise ComplianceRefused(
            f"Unknown kind {kind!r}: choose one of {', '.join(SubjectRequest.Kind.values)}."
        )
    if jurisdiction not in Jurisdiction.values:
        raise ComplianceRefused(
            f"Unknown jurisdiction {jurisdiction!r}: choose one of "
            f"{', '.join(Jurisdiction.values)}."
        )
    received_at = received_at or timezone.now()
    if received_at > timezone.now():
        raise ComplianceRefused(
            "The receipt time is in the future: give when the request reached you."
        )
    with change_context(user=actor, reason=reason), transaction.atomic():
        request = SubjectRequest.objects.create(
            kind=kind,
            # the row may be gone
            subject=None if subject is None or subject_gone(subject) else subject,
            subject_key="" if subject is None else str(subject.pk),
            channel=channel,
            contact_email=contact_email.strip(),
            details=details.strip(),
            language=language,
            jurisdiction=jurisdiction,
            received_at=received_at,
            due_at=request_due(jurisdiction, received_at),
        )
        request_ledger(request, transition="create", previous=None, actor=actor, reason=reason)
    return request


def request_verify(
    *,
    request: SubjectRequest,
    actor,
    method: str,
    note: str = "",
    reason: str = "",
    ip: str | None = None,
) -> SubjectRequest:
    """Record that `actor` verified the requester's identity, how (`method`) and a `note`.

    The clock keeps running from receipt: verification does not move the due date.
    """
    if method not in SubjectRequest.VerificationMethod.values:
        raise ComplianceRefused(
            "Say how the identity was verified: choose one of "
            f"{', '.join(SubjectRequest.VerificationMethod.values)}."
        )
    return _transition(
        request,
        actor=actor,
        reason=reason,
        transition="verify",
        to=State.VERIFIED,
        allowed=(State.RECEIVED,),
        refusal="{request} is {state}: the requester's identity was verified already.",
        verified_at=timezone.now(),
        verified_by=actor,
        verification_method=method,
        verification_note=note.strip(),
        verified_ip=ip or None,
    )


def request_start(*, request: SubjectRequest, actor, reason: str = "") -> SubjectRequest:
    """Start work on a verified request."""
    return _transition(
        request,
        actor=actor,
        reason=reason,
        transition="start",
        to=State.IN_PROGRESS,
        allowed=(State.VERIFIED,),
        refusal="{request} is {state}: only a verified request can be started. Verify the "
        "requester's identity first.",
        started_at=timezone.now(),
    )


def request_complete(
    *, request: SubjectRequest, actor, reason: str = "", answer: str = ""
) -> SubjectRequest:
    """Close a request in progress as answered. Final. A requester from the privacy center
    is emailed, with `answer` when given."""
    done = _transition(
        request,
        actor=actor,
        reason=reason,
        transition="complete",
        to=State.COMPLETED,
        allowed=(State.IN_PROGRESS,),
        refusal="{request} is {state}: only a request in progress can be completed. Verify "
        "the requester's identity and start the request first.",
        completed_at=timezone.now(),
    )
    requester_tell(done, "completed", answer=answer)
    return done


def request_reject(*, request: SubjectRequest, actor, reason: str) -> SubjectRequest:
    """Refuse a request, stating why (GDPR Art. 12(4): the subject is told the reason). Final."""
    reason = reason.strip()
    if not reason:
        raise ComplianceRefused(
            "Give the reason for the refusal: the subject must be told it (GDPR Art. 12(4))."
        )
    rejected = _transition(
        request,
        actor=actor,
        reason=reason,
        transition="reject",
        to=State.REJECTED,
        allowed=(State.RECEIVED, State.VERIFIED, State.IN_PROGRESS),
        refusal="{request} is {state}: it can no longer be rejected.",
        rejected_at=timezone.now(),
        rejection_reason=reason,
    )
    requester_tell(rejected, "rejected")
    return rejected


def request_extend(
    *,
    request: SubjectRequest,
    actor,
    reason: str,
    due_at: datetime | date | None = None,
    months: int = 0,
    days: int = 0,
) -> SubjectRequest:
    """Extend the deadline once, to `due_at` or by `months` and `days`, giving the reason.

    Refused after the original due date (the extension is given within the first month,
    or the first 45 days under the CCPA), a second time, and beyond three months (GDPR) or
    90 days (CCPA) from receipt.
    """
    _require(actor, SubjectRequest, "change")
    reason = reason.strip()
    if not reason:
        raise ComplianceRefused(
            "Give the reason for the extension: the subject must be told it with the new date."
        )
    if (due_at is None) == (not (months or days)):
        raise ComplianceRefused("Give either a new due date or a period (months or days).")
    if months < 0 or days < 0:
        raise ComplianceRefused("An extension moves the due date later: give a positive period.")
    with change_context(user=actor, reason=reason), transaction.atomic():
        locked = _locked(request)
        rule = EXTENSION_LIMITS[locked.jurisdiction]
        if locked.extended_at is not None:
            raise ComplianceRefused(
                f"{locked} was already extended on {_shown(locked.extended_at)}, to "
                f"{_shown(locked.due_at)}: {rule}, so it cannot be extended again."
            )
        now = timezone.now()
        if now >= locked.original_due_at:
            raise ComplianceRefused(
                f"Too late to extend {locked}: the extension had to be given within the "
                f"{FIRST_PERIOD[locked.jurisdiction]}, before {_shown(locked.original_due_at)}. "
                "Answer the request now."
            )
        if due_at is None:
            new_due = add_days(add_months(locked.due_at, months), days)
        elif isinstance(due_at, datetime):
            new_due = due_at
        else:  # a date: at the time of day the original deadline falls
            new_due = timezone.make_aware(
                datetime.combine(due_at, timezone.localtime(locked.due_at).time())
            )
        if new_due <= locked.due_at:
            raise ComplianceRefused(
                f"The new due date must be after the current one ({_shown(locked.due_at)})."
            )
        if new_due > locked.latest_due_at:
            raise ComplianceRefused(
                f"{_shown(new_due)} is beyond the legal maximum: {rule}, that is until "
                f"{_shown(locked.latest_due_at)}. Choose an earlier date."
            )
        previous_due = locked.due_at
        locked.due_at = new_due
        locked.extended_at = now
        locked.extended_by = actor
        locked.extension_reason = reason
        locked.save()
        request_ledger(
            locked,
            transition="extend",
            previous=locked.state,
            actor=actor,
            reason=reason,
            previous_due_at=previous_due.isoformat(),
        )
    requester_tell(locked, "extended")
    return locked


ANSWERABLE = (State.VERIFIED, State.IN_PROGRESS)
ANSWERED_KIND = {"export": SubjectRequest.Kind.ACCESS, "erasure": SubjectRequest.Kind.ERASURE}


def answered_request(
    request: SubjectRequest | None, subject, *, what: str, reason: str, lock: bool = False
) -> SubjectRequest | None:
    """`request` as it is now (under its row lock with `lock`), once it is known that an
    export or erasure (`what`) of `subject` may answer it: a request of that person, of that
    kind, whose requester's identity was verified (how, and when) and that is still open.
    Without a request the officer's `reason` is required: the record says why it was run."""
    if request is None:
        if not (reason or "").strip():
            raise ComplianceRefused(
                f"An {what} that answers no request needs the officer's reason: give it (it "
                f"is recorded with the {what}). To answer a request, open the {what} from "
                "the request's page."
            )
        return None
    found = SubjectRequest.objects.filter(pk=request.pk)
    current = (found.select_for_update() if lock else found).first()
    if current is None:
        raise ComplianceRefused(f"Request #{request.pk} does not exist: nothing was run.")
    # A request keeps the subject's key should the subject row go.
    if current.subject_key != str(subject.pk):
        raise ComplianceRefused(
            f"Request #{current.pk} is about another data subject: open the export or "
            "erasure from that request's own page."
        )
    if (
        current.state not in ANSWERABLE
        or not current.verification_method
        or current.verified_at is None
    ):
        raise ComplianceRefused(
            f"Request #{current.pk} is {current.get_state_display().lower()}: only an open "
            "request whose requester's identity was verified can be answered. Verify the "
            f"identity on the request's page (how, and by whom) before the {what}."
        )
    if current.kind != ANSWERED_KIND[what]:
        raise ComplianceRefused(
            f"Request #{current.pk} asks for {current.get_kind_display().lower()}, which an "
            f"{what} does not answer: open the page its kind needs from the request's page."
        )
    return current
