"""Consents: each grant or withdrawal as an event, and the state it leaves."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from retention.services import _require
from versions.context import change_context

from ..models import (
    ConsentEvent,
    ConsentPurpose,
    ConsentState,
    ConsentText,
)
from .common import ComplianceRefused

# Consents ------------------------------------------------------------------------------
# Not ledgered: a grant or withdrawal is the subject's choice, not a privileged action. The
# events are themselves an append-only record (who recorded it, when, from where), and the
# state's history shows every change of the state.


def _purpose(purpose: ConsentPurpose | str) -> ConsentPurpose:
    if isinstance(purpose, ConsentPurpose):
        return purpose
    found = ConsentPurpose.objects.filter(slug=purpose).first()
    if found is None:
        known = ", ".join(ConsentPurpose.objects.values_list("slug", flat=True)) or "none yet"
        raise ComplianceRefused(
            f"Unknown consent purpose {purpose!r}: use one of the purposes in the admin "
            f"({known}), or add it there first."
        )
    return found


def consent_record(
    *,
    subject,
    purpose: ConsentPurpose | str,
    granted: bool,
    collection_point: str,
    ip: str | None = None,
    user_agent: str = "",
    text: ConsentText | None = None,
    actor=None,
    reason: str = "",
    at: datetime | None = None,
) -> ConsentEvent:
    """Record a grant or a withdrawal of `subject`'s consent to `purpose` (a purpose or its
    slug), and bring the subject's state for that purpose up to date.

    `text` is the version the subject saw (default: the purpose's latest published text);
    `at` when it happened (default now); `actor` the staff member recording it, None when
    the subject acted. A withdrawal never removes the grant: both events stay, and the
    state keeps when consent was given. Refused (ComplianceRefused) for an unknown purpose,
    a grant to an inactive one, a text of another purpose or not yet published, and an
    event dated before the subject's latest one for the purpose.
    """
    _require(actor, ConsentEvent, "add")
    moment = at or timezone.now()
    purpose = _purpose(purpose)
    collection_point = collection_point.strip()
    if not collection_point:
        raise ComplianceRefused(
            'Say where the consent was collected (e.g. "signup form", "preference centre").'
        )
    if granted and not purpose.active:
        raise ComplianceRefused(
            f"The purpose {purpose} is inactive and takes no new grants: activate it first."
        )
    if text is None:
        text = purpose.latest_text(moment)
        if text is None:
            raise ComplianceRefused(
                f"The purpose {purpose} has no published text: publish one in the admin first."
            )
    elif text.purpose_id != purpose.pk:
        raise ComplianceRefused(
            f"The text {text} belongs to the purpose {text.purpose}, not {purpose}: "
            "give a text of this purpose."
        )
    elif text.published_at > moment:
        raise ComplianceRefused(
            f"The text {text} was not yet published at {moment:%Y-%m-%d %H:%M}."
        )
    with change_context(user=actor, reason=reason), transaction.atomic():
        state, created = _state_locked(subject, purpose, granted=granted, text=text, at=moment)
        if not created and at is None:
            moment = timezone.now()  # read after the lock: after the event that held it
        elif not created and at < state.updated_at:
            raise ComplianceRefused(
                f"The latest {purpose} event of this subject is from "
                f"{state.updated_at:%Y-%m-%d %H:%M}: record events in the order they happened."
            )
        event = ConsentEvent.objects.create(
            subject=subject,
            purpose=purpose,
            text=text,
            granted=granted,
            occurred_at=moment,
            ip_address=ip or None,
            user_agent=user_agent,
            collection_point=collection_point,
            actor=actor if actor is not None and actor.is_authenticated else None,
        )
        if not created:
            _state_apply(state, event)
    return event


def _state_locked(subject, purpose, *, granted, text, at) -> tuple[ConsentState, bool]:
    """The subject's state for `purpose`, locked until the transaction ends: the existing
    row, or a new one holding this first event (created=True). Grants and withdrawals of the
    same subject and purpose so apply one after the other, the first ones included."""
    states = ConsentState.objects.select_for_update().filter(subject=subject, purpose=purpose)
    state = states.first()
    if state is not None:
        return state, False
    try:
        with transaction.atomic():  # a savepoint: a concurrent first event may win the insert
            return (
                ConsentState.objects.create(
                    subject=subject,
                    purpose=purpose,
                    granted=granted,
                    granted_at=at if granted else None,
                    revoked_at=None if granted else at,
                    text=text,
                    updated_at=at,
                ),
                True,
            )
    except IntegrityError:
        return states.get(), False  # waited for the winner's commit; now it is ours


def _state_apply(state: ConsentState, event: ConsentEvent) -> None:
    """The state after `event`, with the seed's semantics (update_user_consent): granted_at
    moves only when the state turns granted, revoked_at only when it turns withdrawn."""
    if event.granted and not state.granted:
        state.granted_at = event.occurred_at
    if not event.granted and state.granted:
        state.revoked_at = event.occurred_at
    state.granted = event.granted
    state.text = event.text
    state.updated_at = event.occurred_at
    state.save()


# The privacy center and Global Privacy Control ----------------------------------------------

#: The collection point of a choice the person made on their consent preferences page.
PRIVACY_CENTER = "privacy center"
#: The collection point of an opt-out recorded from a Global Privacy Control signal.
GPC = "GPC"


def consent_choose(
    *,
    subject,
    purpose: ConsentPurpose | str,
    granted: bool,
    version: int,
    ip: str | None = None,
    user_agent: str = "",
) -> ConsentEvent:
    """The person's own grant or withdrawal from their preferences page, with the version of
    the text the page showed. Refused (ComplianceRefused) when that text is no longer the
    purpose's latest (the page is stale: the person must read the new wording first)."""
    purpose = _purpose(purpose)
    text = purpose.latest_text()
    if text is None or text.version != version:
        raise ComplianceRefused(
            f"The wording of “{purpose}” changed since the page was shown: "
            "read the current wording below and choose again."
        )
    return consent_record(
        subject=subject,
        purpose=purpose,
        granted=granted,
        text=text,
        collection_point=PRIVACY_CENTER,
        ip=ip,
        user_agent=user_agent,
    )


def gpc_honour(*, subject, ip: str | None = None, user_agent: str = "") -> list[ConsentEvent]:
    """Honour a Global Privacy Control signal from `subject`: an opt-out (source "GPC") of each
    purpose flagged sale or sharing, once per subject and purpose, and the events recorded.

    Once means once ever: a grant the person makes later is their own choice and the signal
    does not undo it, and a request without the signal is no opt-in. The opt-out is recorded
    whatever the state (also when nothing was granted yet), so the signal counts as seen and a
    later grant stands. Purposes without a published text are skipped (nothing was shown).
    """
    purposes = ConsentPurpose.objects.filter(sale_or_sharing=True).exclude(
        events__subject=subject, events__collection_point=GPC
    )
    events = []
    if not purposes.exists():
        return events  # the common case: the signal was honoured before
    with transaction.atomic():
        # The subject's row is locked until the opt-outs are recorded: a second request with
        # the signal, racing this one, waits here and then finds the events below.
        list(type(subject)._base_manager.select_for_update().filter(pk=subject.pk))
        for purpose in purposes:
            text = purpose.latest_text()
            if text is None:
                continue
            events.append(
                consent_record(
                    subject=subject,
                    purpose=purpose,
                    granted=False,
                    text=text,
                    collection_point=GPC,
                    ip=ip,
                    user_agent=user_agent,
                    reason="Global Privacy Control signal",
                )
            )
    return events
