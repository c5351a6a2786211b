"""Read queries of the compliance app."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, Exists, F, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Lower, Trim
from django.utils import timezone

from retention.holds import held_q, holds_active, subject_holds
from retention.models import RESTRICTION_GROUNDS, LegalHold
from retention.softdelete import is_soft_delete_model
from versions.models import LedgerAction, LedgerEntry
from versions.selectors import snapshot_instance
from versions.setbased import history_model_of
from versions.subjects import SubjectAmbiguous

from . import config
from .anonymisers import (
    REDACTED,
    about_q,
    erasure_fields,
    erasure_values,
    get_anonymiser,
    keyed_sha256,
    keyed_sha256_text,
    still_personal_q,
    value_where,
)
from .models import (
    ConsentEvent,
    ConsentPurpose,
    ConsentState,
    ConsentText,
    ErasureLogEntry,
    SubjectExport,
    SubjectRequest,
)
from .registry import Category, Erasure, ModelPrivacy, registry, subject_q

__all__ = [
    "ConsentChoice",
    "consent_preferences",
    "about_q",
    "export_masks",
    "other_subject_keys",
    "DUE_SOON_DAYS",
    "RECEIPT_FORMAT",
    "ErasurePlan",
    "ErasureStep",
    "InventoryField",
    "InventoryRow",
    "OverviewModel",
    "SubjectOverview",
    "SubjectAmbiguous",
    "SubjectRows",
    "consent_receipt",
    "consent_timeline",
    "erasure_fields",
    "erasure_scope",
    "erasure_log_email_matches",
    "erasure_log_gone",
    "erasure_log_matches",
    "erasure_plan",
    "erasure_targets",
    "erasure_values",
    "still_personal_q",
    "value_where",
    "inventory",
    "request_due_soon_q",
    "request_overdue_q",
    "export_orphans",
    "request_search_q",
    "request_steps",
    "requests_due",
    "RequestsDue",
    "subject_find",
    "subject_get",
    "subject_gone",
    "subject_overview",
    "subject_identifiers",
    "subjects_erased",
    "subject_q",
    "subject_ref",
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
    #: The primary key of the subject walked: whose rows these are.
    subject_pk: object = None

    @property
    def model(self) -> type[models.Model]:
        return self.entry.model


def other_subject_keys(entry: ModelPrivacy, model) -> list[str]:
    """The columns of `model` (the registered model or its history model) holding a key of
    the subject model: on a row about several people, the others' keys are theirs."""
    subject_model = registry.subject_model()
    return [
        field.attname
        for field in model._meta.concrete_fields
        if field.is_relation and field.related_model is subject_model
    ]


def export_masks(walked: SubjectRows, model) -> dict[str, object]:
    """Column -> the expression an export reads instead, for `walked`'s model (or its history
    `model`): a personal field about someone else (another path's subject) is redacted, and
    a key of another subject left out (GDPR Art. 15(4)). Columns not listed are read as
    they are."""
    entry, history = walked.entry, model is not walked.model
    present = {field.name for field in model._meta.concrete_fields}
    masks = {}
    for name in entry.fields:
        about = about_q(entry, name, walked.subject_pk, history=history)
        if name not in present or not about:
            continue
        field = model._meta.get_field(name)
        hidden = REDACTED if isinstance(field, models.CharField | models.TextField) else None
        masks[field.attname] = Case(
            When(about, then=F(field.attname)),
            default=Value(hidden, output_field=field),
            output_field=field,
        )
    for column in other_subject_keys(entry, model):
        masks[column] = Case(
            When(**{column: walked.subject_pk}, then=F(column)),
            default=Value(None),
            output_field=_key_field(registry.subject_model()),
        )
    return masks


def _key_field(model) -> models.Field:
    """A field of the type of `model`'s primary key, for an expression's output."""
    pk = model._meta.pk
    while pk.is_relation:
        pk = pk.target_field
    return models.BigIntegerField() if isinstance(pk, models.IntegerField) else type(pk)()


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
        walked.append(SubjectRows(entry=entry, rows=rows, history=history, subject_pk=subject.pk))
    return walked


def subject_email_fields(model) -> list[str]:
    """The subject model's registered email fields (its contact details of type email)."""
    entry = registry.get(model)
    if entry is None:
        return []
    return [
        name for name in entry.fields if isinstance(model._meta.get_field(name), models.EmailField)
    ]


def request_find(identifier: str) -> SubjectRequest | None:
    """The data-subject request with this id (``12`` or ``#12``), else None."""
    key = str(identifier).lstrip("#")
    return SubjectRequest.objects.filter(pk=key).first() if key.isdigit() else None


def _subject_key(model, value):
    """`value` as the subject model's primary key, None when it cannot be one."""
    try:
        return model._meta.pk.to_python(str(value).strip())
    except ValidationError:
        return None


def _gone_history(model) -> models.QuerySet | None:
    """History rows of subjects whose row is no longer in the table (None: no history)."""
    history = history_model_of(model)
    if history is None:
        return None
    key = model._meta.pk.attname
    alive = model._base_manager.filter(pk=OuterRef(key))
    return history._base_manager.exclude(Exists(alive))


def _from_history(model, key):
    """The gone subject `key` as its last history row left it, None without history rows."""
    gone = _gone_history(model)
    if gone is None:
        return None
    last = gone.filter(**{model._meta.pk.attname: key}).order_by("-history_date", "-pk").first()
    return None if last is None else snapshot_instance(model, last)


def subject_get(key):
    """The subject with this primary key: its row (soft-deleted or not), or, once the row is
    gone (hard-deleted, purged), the subject as its last history row left it: history still
    holds their data, so they can still be found and erased. None when neither holds the key.
    """
    model = registry.subject_model()
    key = _subject_key(model, key)
    if key is None:
        return None
    found = model._base_manager.filter(pk=key).first()
    return found if found is not None else _from_history(model, key)


def subject_gone(subject) -> bool:
    """Whether `subject` was rebuilt from history by `subject_get`: its row is gone."""
    return subject._state.adding


def _emails_q(model, identifier: str) -> Q:
    """`identifier` as any of the subject's registered email fields that `model` (the subject
    model or its history) has, case-insensitively."""
    names = {field.name for field in model._meta.fields}
    q = Q(pk__in=[])
    for name in subject_email_fields(registry.subject_model()):
        if name in names:
            q |= Q(**{f"{name}__iexact": identifier})
    return q


def subject_find(identifier: str):
    """The subject with this primary key or email, else None. A key finds any row,
    soft-deleted ones included, and a subject whose row is gone but whose history rows
    remain (`subject_get`). An email finds the subject who has it now; failing that, the one
    whose history rows hold it (an email they had, or a subject whose row is gone). An email
    that matches several subjects, either way, is refused."""
    model = registry.subject_model()
    identifier = str(identifier).strip()
    if not identifier:
        return None
    if _subject_key(model, identifier) is not None:
        found = subject_get(identifier)
        if found is not None:
            return found
    keys = list(model._base_manager.filter(_emails_q(model, identifier)).values_list("pk")[:2])
    history = history_model_of(model)
    if not keys and history is not None:
        # Only when nobody has it now: history has no index on emails, and this reads it all.
        had = history._base_manager.filter(_emails_q(history, identifier))
        keys = list(had.order_by().values_list(model._meta.pk.attname).distinct()[:2])
    if len(keys) > 1:
        raise SubjectAmbiguous(
            f"{len(keys)} or more {model._meta.verbose_name_plural} have or had the email "
            f"{identifier!r}: give the primary key instead."
        )
    return subject_get(keys[0][0]) if keys else None


def subject_by_email(email: str):
    """The one live subject whose registered email is `email` now, else None (nobody, or
    several: the privacy center then answers as for nobody, and an officer sorts it out)."""
    model = registry.subject_model()
    email = str(email).strip()
    if not email or not subject_email_fields(model):
        return None
    found = list(model._default_manager.filter(_emails_q(model, email))[:2])
    return found[0] if len(found) == 1 else None


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
    #: Rows kept by a legal hold or a restriction (on the subject, a row, or a dependant).
    held: int

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
    any_hold = holds_active()
    shown = []
    for walked in subject_walk(subject):
        model = walked.model
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
                # The rows a purge or an erasure leaves: holds and restrictions on the
                # subject, on the rows themselves, or on what their deletion would reach.
                held=walked.rows.filter(held_q(model)).count() if any_hold else 0,
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


def _exports_of_request(**filters) -> Exists:
    return Exists(SubjectExport.objects.filter(request=OuterRef("pk"), **filters))


def request_awaiting_release_q() -> Q:
    """Access requests in progress whose export is done but was not released to the person."""
    return (
        Q(kind=SubjectRequest.Kind.ACCESS, state=SubjectRequest.State.IN_PROGRESS)
        & _exports_of_request(status=SubjectExport.Status.DONE, released_at__isnull=True)
        & ~_exports_of_request(released_at__isnull=False)
    )


def request_awaiting_download_q() -> Q:
    """Requests in progress whose copy was released and not downloaded yet."""
    return Q(state=SubjectRequest.State.IN_PROGRESS) & _exports_of_request(
        status=SubjectExport.Status.DONE, released_at__isnull=False, downloads=0
    )


def request_copy_released(request: SubjectRequest) -> bool:
    """Whether a copy was released to the person who made `request`."""
    return request.exports.filter(released_at__isnull=False).exists()


def request_release_export(request: SubjectRequest) -> SubjectExport | None:
    """The export a release of `request` would send: its latest finished one, else None."""
    return (
        SubjectExport.objects.filter(request=request, status=SubjectExport.Status.DONE)
        .exclude(filename="")
        .order_by("-finished_at", "-pk")
        .first()
    )


# Files of exports: a ZIP or a temporary .part of one, in the export directory.
_EXPORT_FILE = re.compile(r"^\.?subject-export-.*\.(zip|part|part\.staging)$")
#: A file modified more recently may belong to an export still being written or committed.
EXPORT_ORPHAN_GRACE = timedelta(minutes=10)


def export_orphans(*, now: datetime | None = None) -> list[Path]:
    """Export files on disk that the catalogue does not keep: no finished export names them
    (no row, or its export expired, failed or was erased), older than the grace period; a
    ZIP, a .part, or the staging directory of an export that died while writing."""
    directory = config.export_dir()
    if not directory.is_dir():
        return []
    kept = set(
        SubjectExport.objects.filter(status=SubjectExport.Status.DONE)
        .exclude(filename="")
        .values_list("filename", flat=True)
    )
    cutoff = ((now or timezone.now()) - EXPORT_ORPHAN_GRACE).timestamp()
    orphans = []
    for path in directory.iterdir():
        if path.name in kept or not _EXPORT_FILE.match(path.name):
            continue
        try:
            if path.stat().st_mtime <= cutoff:  # a staging directory of a dead export too
                orphans.append(path)
        except FileNotFoundError:  # removed meanwhile
            continue
    return sorted(orphans)


# Ledger actions that name the request they answer in their details ("request": id).
_REQUEST_STEP_ACTIONS = (
    LedgerAction.REQUEST,
    LedgerAction.EXPORT,
    LedgerAction.EXPORT_DOWNLOAD,
    LedgerAction.ERASURE,
)


def request_steps(request: SubjectRequest):
    """Each step of `request` in order, with who and when: its own state changes and the
    exports, downloads and erasures that answered it, read from the ledger (one record)."""
    return (
        LedgerEntry.objects.filter(action__in=_REQUEST_STEP_ACTIONS, details__request=request.pk)
        .select_related("actor")
        .order_by("id")
    )


def request_search_q(term: str) -> Q:
    """Requests about the subject with this key, or whose registered email contains `term`."""
    term = term.strip()
    q = Q(subject_key=term)
    for name in subject_email_fields(registry.subject_model()):
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


@dataclass(frozen=True)
class ConsentChoice:
    """One line of a person's consent preferences page: a purpose, the wording they are
    shown, and their current state (None: never asked)."""

    purpose: ConsentPurpose
    text: ConsentText
    granted: bool | None


def consent_preferences(subject) -> list[ConsentChoice]:
    """What `subject` may choose on their preferences page: every active purpose with a
    published text, and any inactive one they still consent to (to withdraw it)."""
    states = {
        state.purpose_id: state.granted
        for state in ConsentState.objects.filter(subject_id=subject.pk)
    }
    granted = [pk for pk, on in states.items() if on]
    choices = []
    for purpose in ConsentPurpose.objects.filter(Q(active=True) | Q(pk__in=granted)):
        text = purpose.latest_text()
        if text is not None:
            choices.append(ConsentChoice(purpose, text, states.get(purpose.pk)))
    return choices


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


# Erasure --------------------------------------------------------------------------------
# What an erasure would do to a subject, read from the subject walk; the service runs the
# same querysets. A row still holds personal data when one of its personal fields differs
# from its anonymised form: a second erasure finds nothing to do.

ERASURE_LOG_SALT = "compliance.erasure.log"
SUBJECT_REF_SALT = "compliance.erasure.subject"
RESTRICTED = "restricted"


def _held(model, *, holds=None, dependants: int = 0) -> Q:
    return held_q(model, dependants=dependants, holds=holds)


def _holds():
    return LegalHold.objects.filter(released_at__isnull=True)


# Where a change came from, on a history row (`versions.history.HistoryContextFields`). On a
# change no staff member made (no user: a public site, the subject themselves) they are the
# subject's own IP address and browser, and an erasure clears them; a staff member's stay.
CONTEXT_VALUES = {"history_ip": None, "history_user_agent": ""}


def unattended_context_q(history_model) -> Q | None:
    """History rows that no user made and that still name where the change came from; None
    for a history model without those columns."""
    present = {f.name for f in history_model._meta.concrete_fields}
    if not set(CONTEXT_VALUES) <= present:
        return None
    return Q(history_user_id__isnull=True) & (
        Q(history_ip__isnull=False) | ~Q(history_user_agent="")
    )


def _kept_q(step_entry: ModelPrivacy, model, *, holds=None) -> Q:
    """Rows of `model` an erasure leaves because of a hold. A delete would take the rows
    below with it, so holds on those count; anonymising leaves them alone."""
    deletes = step_entry.erasure == Erasure.DELETE and model is step_entry.model
    return _held(model, holds=holds, dependants=2 if deletes else 0)


@dataclass(frozen=True)
class ErasureStep:
    """One registered model in an erasure plan: what happens to its rows and history rows."""

    walked: SubjectRows
    #: Rows about the subject, and those the erasure anonymises or deletes.
    total: int
    to_change: int
    #: Rows left by a hold (or the registry's legal ground): in all, and by ground label
    #: (a row two holds keep counts under both grounds).
    kept_total: int
    kept: dict[str, int]
    #: Rows left by a restriction of processing (Art. 18), among `kept`.
    restricted: int
    #: History rows about the subject, those to scrub now, those kept with their record.
    history_total: int
    history_to_scrub: int
    history_kept: int

    @property
    def entry(self) -> ModelPrivacy:
        return self.walked.entry

    @property
    def label(self) -> str:
        return self.entry.label

    @property
    def action(self) -> str:
        return self.entry.erasure

    @property
    def action_label(self) -> str:
        return Erasure(self.action).label

    @property
    def verbose_name(self) -> str:
        return str(self.walked.model._meta.verbose_name_plural).capitalize()

    def describe(self) -> dict:
        """The step without personal data (hashed into the plan and kept in certificates)."""
        return {
            "action": str(self.action),
            "fields": erasure_fields(self.entry, self.walked.model),
            "total": self.total,
            "to_change": self.to_change,
            "kept_total": self.kept_total,
            "kept": dict(sorted(self.kept.items())),
            "restricted": self.restricted,
            "history_total": self.history_total,
            "history_to_scrub": self.history_to_scrub,
            "history_kept": self.history_kept,
        }


@dataclass(frozen=True)
class ErasurePlan:
    """What `subject_erase` would do now, model by model; `hash` identifies it."""

    subject_model: str
    subject_ref: str
    steps: list[ErasureStep]
    hash: str

    @property
    def restricted(self) -> int:
        """Rows a restriction of processing (Art. 18) keeps: the erasure skips them."""
        return sum(step.restricted for step in self.steps)

    @property
    def changes(self) -> int:
        """Rows and history rows the erasure would change: 0 means nothing left to erase."""
        return sum(step.to_change + step.history_to_scrub for step in self.steps)

    @property
    def kept_total(self) -> int:
        return sum(step.kept_total for step in self.steps)

    @property
    def history_kept(self) -> int:
        """History rows a hold, a restriction or a legal ground keeps as they are."""
        return sum(step.history_kept for step in self.steps)

    @property
    def kept(self) -> dict[str, int]:
        """Rows kept, by ground, over every model."""
        totals: dict[str, int] = {}
        for step in self.steps:
            for ground, count in step.kept.items():
                totals[ground] = totals.get(ground, 0) + count
        return totals


def erasure_targets(walked: SubjectRows) -> tuple[models.QuerySet, models.QuerySet | None]:
    """The rows an erasure changes (anonymises or deletes) and the history rows it scrubs.

    Lazy querysets: evaluated after the rows changed, the second includes the history rows
    the change itself wrote (a delete's snapshot, the anonymised state).
    """
    entry, model = walked.entry, walked.model
    holds = _holds().exists()
    if entry.erasure == Erasure.RETAIN:
        rows = walked.rows.none()
    else:
        rows = walked.rows
        if entry.erasure == Erasure.ANONYMISE:
            rows = rows.filter(still_personal_q(entry, model, walked.subject_pk))
        if holds:
            rows = rows.exclude(_kept_q(entry, model))
    history = walked.history
    if history is not None:
        unattended = unattended_context_q(history.model)
        if entry.erasure == Erasure.RETAIN or (
            unattended is None and not erasure_fields(entry, history.model)
        ):
            history = history.none()  # a legal ground keeps them as made; or nothing to scrub
        elif not erasure_fields(entry, history.model):
            history = history.filter(unattended)  # a history that leaves the fields out (a token)
        else:
            personal = still_personal_q(entry, history.model, walked.subject_pk)
            if personal:  # an empty Q (nothing settles: every row counts) stays as it is
                history = history.filter(personal if unattended is None else personal | unattended)
        if holds:
            history = history.exclude(_held(history.model))
    return rows, history


def erasure_scope(walked: SubjectRows) -> tuple[models.QuerySet, models.QuerySet | None]:
    """The subject's rows and history rows an erasure takes (every one a hold does not keep),
    whether or not they still hold personal data: the records other logs may name."""
    rows, history = walked.rows, walked.history
    if _holds().exists():
        rows = rows.exclude(_kept_q(walked.entry, walked.model))
        if history is not None:
            history = history.exclude(_held(history.model))
    return rows, history


def _ground_label(ground: str) -> str:
    return LegalHold.Ground(ground).label if ground in LegalHold.Ground.values else ground


def _step(walked: SubjectRows, grounds: list[str]) -> ErasureStep:
    entry, model = walked.entry, walked.model
    rows, history = erasure_targets(walked)
    total = walked.rows.count()
    kept: dict[str, int] = {}
    kept_total = restricted = 0
    if entry.erasure == Erasure.RETAIN:
        kept_total = total
        if total:
            kept[entry.legal_ground] = total
    elif grounds:
        kept_total = walked.rows.filter(_kept_q(entry, model)).count()
        for ground in grounds:
            count = walked.rows.filter(_kept_q(entry, model, holds=_holds().filter(ground=ground)))
            if count := count.count():
                kept[_ground_label(ground)] = count
        if RESTRICTION_GROUNDS.intersection(grounds):
            restrictions = _holds().filter(ground__in=RESTRICTION_GROUNDS)
            restricted = walked.rows.filter(_kept_q(entry, model, holds=restrictions)).count()
    history_total = walked.history.count() if walked.history is not None else 0
    history_kept = 0
    if walked.history is not None and grounds and entry.erasure != Erasure.RETAIN:
        history_kept = walked.history.filter(_held(walked.history.model)).count()
    elif entry.erasure == Erasure.RETAIN:
        history_kept = history_total
    return ErasureStep(
        walked=walked,
        total=total,
        to_change=rows.count(),
        kept_total=kept_total,
        kept=kept,
        restricted=restricted,
        history_total=history_total,
        history_to_scrub=history.count() if history is not None else 0,
        history_kept=history_kept,
    )


def subject_ref(subject) -> str:
    """A keyed hash naming the subject in certificates: not the key itself."""
    text = f"{subject._meta.label}:{subject.pk}"
    return keyed_sha256_text(text, salt=SUBJECT_REF_SALT)


def erasure_plan(subject) -> ErasurePlan:
    """What erasing `subject` would do now: per registered model, the action, the rows it
    changes, the rows kept and why, the history rows to scrub; and the plan's hash."""
    grounds = sorted(set(_holds().values_list("ground", flat=True)))
    steps = [_step(walked, grounds) for walked in subject_walk(subject)]
    ref = subject_ref(subject)
    label = subject._meta.label
    described = {
        "subject_model": label,
        "subject_ref": ref,
        "steps": {step.label: step.describe() for step in steps},
    }
    canonical = json.dumps(described, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return ErasurePlan(subject_model=label, subject_ref=ref, steps=steps, hash=digest)


def subject_identifiers(subject) -> dict[str, set[str]]:
    """The subject's identifiers an erasure log keeps a keyed hash of: its key, and every
    email it has or had (its history rows), lower-cased."""
    model = type(subject)
    emails: set[str] = set()
    names = subject_email_fields(model)
    history_model = history_model_of(model)
    for name in names:
        emails.update(model._base_manager.filter(pk=subject.pk).values_list(name, flat=True))
        if history_model is not None:
            rows = history_model._base_manager.filter(**{model._meta.pk.attname: subject.pk})
            emails.update(rows.values_list(name, flat=True))
    return {
        "key": {str(subject.pk)},
        "email": {e.strip().lower() for e in emails if e and e.strip()},
    }


def subjects_erased(keys) -> set[str]:
    """Which of these subject keys the erasure log holds (as text): one indexed lookup."""
    digests = {keyed_sha256_text(str(key), salt=ERASURE_LOG_SALT): str(key) for key in keys}
    found = ErasureLogEntry.objects.filter(kind="key", digest__in=list(digests))
    return {digests[digest] for digest in found.values_list("digest", flat=True)}


def erasure_log_names(*, keys=(), emails=()) -> tuple[set, set]:
    """Which of these subject keys and emails the erasure log names: compared by their keyed
    hashes (the digests `erasure_log_matches` compares in SQL), since the log holds no
    identifier itself. For rows outside the live tables, such as a table read from a backup."""
    # Emails as `subject_identifiers` wrote them into the log: stripped, lower-cased.
    return _named("key", keys, str), _named("email", emails, lambda e: e.strip().lower())


def _named(kind: str, values, as_text, *, per_query: int = 10_000) -> set:
    digests = {keyed_sha256_text(as_text(v), salt=ERASURE_LOG_SALT): v for v in values if v}
    wanted, found = list(digests), set()
    for start in range(0, len(wanted), per_query):
        named = ErasureLogEntry.objects.filter(
            kind=kind, digest__in=wanted[start : start + per_query]
        )
        found.update(digests[digest] for digest in named.values_list("digest", flat=True))
    return found


def erasure_log_matches(entries: models.QuerySet | None = None) -> models.QuerySet:
    """Subjects in the database now that match an erasure log entry (of `entries`, default
    the whole log) by key or email: after a backup is restored, the subjects whose erasure
    must run again. One query."""
    model = registry.subject_model()
    log = (ErasureLogEntry.objects.all() if entries is None else entries).values("digest")
    rows = model._base_manager.annotate(_key_digest=keyed_sha256("pk", salt=ERASURE_LOG_SALT))
    q = Q(_key_digest__in=log.filter(kind="key"))
    for index, name in enumerate(subject_email_fields(model)):
        alias = f"_email_digest_{index}"
        rows = rows.annotate(**{alias: keyed_sha256(Lower(Trim(name)), salt=ERASURE_LOG_SALT)})
        q |= Q(**{f"{alias}__in": log.filter(kind="email")})
    return rows.filter(q).order_by("pk")


def erasure_log_email_matches(entries: models.QuerySet | None = None) -> list[tuple]:
    """(subject key, email field, log entry id) for each subject in the database now whose
    email matches an email entry of the erasure log (of `entries`, default the whole log),
    the entry being the first with that digest. An email an erased person once had may be
    someone else's now: such a match is for an officer to confirm, never erased unasked.
    One query per email field."""
    model = registry.subject_model()
    log = (ErasureLogEntry.objects.all() if entries is None else entries).filter(kind="email")
    found = []
    for name in subject_email_fields(model):
        rows = model._base_manager.annotate(
            _email_digest=keyed_sha256(Lower(Trim(name)), salt=ERASURE_LOG_SALT)
        ).filter(_email_digest__in=log.values("digest"))
        first = log.filter(digest=OuterRef("_email_digest")).order_by("pk").values("pk")[:1]
        rows = rows.annotate(_log_entry=Subquery(first)).order_by("pk")
        found += [(pk, name, entry) for pk, entry in rows.values_list("pk", "_log_entry")]
    return found


def erasure_log_gone(entries: models.QuerySet | None = None) -> list:
    """Keys of subjects whose row is gone but whose history rows an erasure log entry names
    by key: after a restore, people erased after the backup whose row the backup already
    lacked, their history rows back unscrubbed. By key only: an email a gone subject once had
    may since have been someone else's, whose erasure is not theirs. One query."""
    model = registry.subject_model()
    gone = _gone_history(model)
    if gone is None:
        return []
    key = model._meta.pk.attname
    log = (ErasureLogEntry.objects.all() if entries is None else entries).filter(kind="key")
    named = gone.annotate(_key_digest=keyed_sha256(key, salt=ERASURE_LOG_SALT)).filter(
        _key_digest__in=log.values("digest")
    )
    return sorted(named.order_by().values_list(key, flat=True).distinct())
