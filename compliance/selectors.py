"""Read queries of the compliance app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Cast
from django.utils import timezone

from versions.setbased import history_model_of

from .anonymisers import get_anonymiser
from .models import ConsentEvent, ConsentState, SubjectRequest
from .registry import Category, Erasure, ModelPrivacy, registry

__all__ = [
    "DUE_SOON_DAYS",
    "RECEIPT_FORMAT",
    "InventoryField",
    "InventoryRow",
    "OverviewModel",
    "SubjectOverview",
    "SubjectAmbiguous",
    "SubjectRows",
    "consent_receipt",
    "consent_timeline",
    "inventory",
    "request_due_soon_q",
    "request_overdue_q",
    "request_search_q",
    "requests_due",
    "RequestsDue",
    "subject_find",
    "subject_overview",
    "subject_q",
    "subject_walk",
]


@dataclass(frozen=True)
class InventoryField:
    name: str
    verbose_name: str
    category: str
    anonymiser: str
    exported: bool


@dataclass(frozen=True)
class InventoryRow:
    """One registered model as a record of processing activities (Art. 30) sees it."""

    label: str
    verbose_name: str
    subject_paths: list[str]
    fields: list[InventoryField]
    erasure: str
    legal_ground: str
    exported: bool
    retention_basis: str
    purpose: str
    lawful_basis: str
    history_tracked: bool


def _row(entry: ModelPrivacy) -> InventoryRow:
    opts = entry.model._meta
    fields = []
    for name, personal in entry.fields.items():
        field = opts.get_field(name)
        fields.append(
            InventoryField(
                name=name,
                verbose_name=str(field.verbose_name),
                category=Category(personal.category).label
                if personal.category in Category.values
                else personal.category,
                anonymiser=get_anonymiser(personal.anonymiser).description,
                exported=entry.exported and personal.exported,
            )
        )
    return InventoryRow(
        label=opts.label,
        verbose_name=str(opts.verbose_name_plural).capitalize(),
        subject_paths=entry.subject_paths,
        fields=fields,
        erasure=Erasure(entry.erasure).label,
        legal_ground=entry.legal_ground,
        exported=entry.exported,
        retention_basis=entry.retention_basis,
        purpose=entry.purpose,
        lawful_basis=entry.lawful_basis,
        history_tracked=hasattr(opts, "simple_history_manager_attribute"),
    )


def inventory() -> list[InventoryRow]:
    """Every registered model with its classification, in label order."""
    return [_row(entry) for entry in registry.entries()]


# The subject walk -----------------------------------------------------------------------
# Export, erasure and the subject overview read a person's data through these functions
# only: one walk of the registry, not three.


@dataclass(frozen=True)
class SubjectRows:
    """One registered model's rows about a subject, and the history rows that copy them."""

    entry: ModelPrivacy
    #: Every row about the subject, soft-deleted ones included (the base manager).
    rows: models.QuerySet
    #: The history rows holding the subject's data; None for an untracked model.
    history: models.QuerySet | None

    @property
    def model(self) -> type[models.Model]:
        return self.entry.model


def subject_q(entry: ModelPrivacy, subject_pk, *, history: bool = False) -> Q:
    """The rows of `entry`'s model (or of its history model) about the subject `subject_pk`.

    History rows copy the record's key under its own name (their primary key is the history
    id) and keep each foreign key as a lookup, so the same subject paths apply to them.
    """
    q = Q(pk__in=[])
    for path in entry.subject_paths:
        if path in ("pk", entry.model._meta.pk.name):
            path = entry.model._meta.pk.attname if history else "pk"
        q |= Q(**{path: subject_pk})
    return q


def subject_walk(subject) -> list[SubjectRows]:
    """Every registered model's rows about `subject`, and their history rows, in label order."""
    walked = []
    for entry in registry.entries():
        rows = entry.model._base_manager.filter(subject_q(entry, subject.pk)).order_by("pk")
        history_model = history_model_of(entry.model)
        history = None
        if history_model is not None:
            history = history_model._base_manager.filter(
                subject_q(entry, subject.pk, history=True)
            ).order_by("pk")
        walked.append(SubjectRows(entry=entry, rows=rows, history=history))
    return walked


def _email_fields(model) -> list[str]:
    """The subject model's registered email fields (its contact details of type email)."""
    entry = registry.get(model)
    if entry is None:
        return []
    return [
        name for name in entry.fields if isinstance(model._meta.get_field(name), models.EmailField)
    ]


def subject_find(identifier: str):
    """The subject with this primary key or email (any row, soft-deleted ones included), else
    None. An email matches case-insensitively; one that matches several subjects is refused."""
    model = registry.subject_model()
    manager = model._base_manager
    identifier = str(identifier).strip()
    if not identifier:
        return None
    try:
        key = model._meta.pk.to_python(identifier)
    except ValidationError:
        key = None
    if key is not None:
        found = manager.filter(pk=key).first()
        if found is not None:
            return found
    emails = Q(pk__in=[])
    for name in _email_fields(model):
        emails |= Q(**{f"{name}__iexact": identifier})
    matches = list(manager.filter(emails)[:2])
    if len(matches) > 1:
        raise SubjectAmbiguous(
            f"{len(matches)} or more {model._meta.verbose_name_plural} have the email "
            f"{identifier!r}: give the primary key instead."
        )
    return matches[0] if matches else None


class SubjectAmbiguous(LookupError):
    """An identifier that matches more than one subject."""


@dataclass(frozen=True)
class OverviewModel:
    """What the subject overview shows of one registered model."""

    entry: ModelPrivacy
    total: int
    #: Soft-deleted rows among `total` (None for a model without soft delete).
    deleted: int | None
    #: History rows holding the subject's data (None for an untracked model).
    history: int | None
    #: The first rows, to link to.
    rows: list
    #: Active holds and restrictions on one of these rows.
    holds: list

    @property
    def verbose_name(self) -> str:
        return str(self.entry.model._meta.verbose_name_plural).capitalize()

    @property
    def erasure(self) -> str:
        return Erasure(self.entry.erasure).label


@dataclass(frozen=True)
class SubjectOverview:
    subject: models.Model
    models: list[OverviewModel]
    #: Active holds and restrictions on the subject as a whole.
    holds: list

    @property
    def restrictions(self) -> list:
        return [hold for hold in self.holds if hold.is_restriction]

    @property
    def history_total(self) -> int:
        return sum(model.history or 0 for model in self.models)


def subject_overview(subject, *, rows_shown: int = 10) -> SubjectOverview:
    """Everything the registry finds about `subject`: the subject walk, counted, with holds."""
    from retention.models import LegalHold
    from retention.selectors import subject_holds
    from retention.softdelete import is_soft_delete_model

    shown = []
    for walked in subject_walk(subject):
        model = walked.model
        key = Cast("pk", output_field=models.CharField())
        holds = LegalHold.objects.filter(
            released_at__isnull=True,
            content_type=ContentType.objects.get_for_model(model),
            object_id__in=walked.rows.annotate(key=key).values("key"),
        ).order_by("placed_at")
        shown.append(
            OverviewModel(
                entry=walked.entry,
                total=walked.rows.count(),
                deleted=(
                    walked.rows.filter(deleted_at__isnull=False).count()
                    if is_soft_delete_model(model)
                    else None
                ),
                history=None if walked.history is None else walked.history.count(),
                rows=list(walked.rows[:rows_shown]),
                holds=list(holds),
            )
        )
    return SubjectOverview(
        subject=subject, models=shown, holds=list(subject_holds(subject).order_by("placed_at"))
    )


# Data-subject requests ------------------------------------------------------------------

DUE_SOON_DAYS = 7
_OPEN = ~Q(state__in=SubjectRequest.FINAL_STATES)


def request_overdue_q(now: datetime | None = None) -> Q:
    """Open requests whose due date has passed."""
    return _OPEN & Q(due_at__lt=now or timezone.now())


def request_due_soon_q(now: datetime | None = None, days: int = DUE_SOON_DAYS) -> Q:
    """Open requests due within `days` days from now (not yet overdue)."""
    now = now or timezone.now()
    return _OPEN & Q(due_at__gte=now, due_at__lt=now + timedelta(days=days))


def request_search_q(term: str) -> Q:
    """Requests about the subject with this key, or whose registered email contains `term`."""
    term = term.strip()
    q = Q(subject_key=term)
    for name in _email_fields(registry.subject_model()):
        q |= Q(**{f"subject__{name}__icontains": term})
    return q


@dataclass(frozen=True)
class RequestsDue:
    """Ids of the open requests past their due date, and of those due soon."""

    overdue: list[int]
    due_soon: list[int]


def requests_due(*, now: datetime | None = None, days: int = DUE_SOON_DAYS) -> RequestsDue:
    """The daily report's content: overdue requests and those due within `days` days."""
    now = now or timezone.now()
    requests = SubjectRequest.objects.order_by("due_at", "pk")
    return RequestsDue(
        overdue=list(requests.filter(request_overdue_q(now)).values_list("pk", flat=True)),
        due_soon=list(requests.filter(request_due_soon_q(now, days)).values_list("pk", flat=True)),
    )


# Consents ------------------------------------------------------------------------------

RECEIPT_FORMAT = "consent-receipt/1"


def consent_timeline(subject) -> models.QuerySet:
    """Every consent event of `subject`, oldest first, with its purpose and text."""
    return (
        ConsentEvent.objects.filter(subject_id=subject.pk)
        .select_related("purpose", "text")
        .order_by("occurred_at", "id")
    )


def consent_receipt(subject) -> dict:
    """Evidence of `subject`'s consents (Art. 7(1)), JSON-ready: every event with the sha256
    of the text it refers to, each text's exact wording, and the current states."""
    events = list(consent_timeline(subject))
    texts = {event.text_id: event.text for event in events}
    states = ConsentState.objects.filter(subject_id=subject.pk).select_related("purpose", "text")
    return {
        "format": RECEIPT_FORMAT,
        "subject": {"model": subject._meta.label, "pk": str(subject.pk)},
        "generated_at": timezone.now().isoformat(),
        "events": [
            {
                "id": event.pk,
                "purpose": event.purpose.slug,
                "action": event.get_granted_display(),
                "occurred_at": event.occurred_at.isoformat(),
                "text_version": event.text.version,
                "text_sha256": event.text.sha256,
                "ip_address": event.ip_address,
                "user_agent": event.user_agent,
                "collection_point": event.collection_point,
                "recorded_by_staff": event.actor_id is not None,
            }
            for event in events
        ],
        "texts": [
            {
                "purpose": text.purpose.slug,
                "purpose_name": text.purpose.name,
                "version": text.version,
                "sha256": text.sha256,
                "published_at": text.published_at.isoformat(),
                "text": text.text,
            }
            for text in sorted(texts.values(), key=lambda t: (t.purpose.slug, t.version))
        ],
        "states": [
            {
                "purpose": state.purpose.slug,
                "granted": state.granted,
                "granted_at": state.granted_at.isoformat() if state.granted_at else None,
                "revoked_at": state.revoked_at.isoformat() if state.revoked_at else None,
                "text_version": state.text.version,
            }
            for state in states.order_by("purpose__slug")
        ],
    }
