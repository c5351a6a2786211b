"""Read queries of the versions app: a record's versions and what each one changed."""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db import models

from compliance.registry import registry, subject_q
from retention.holds import holds_active, restricted_q

from .history import history_options
from .setbased import history_model_of
from .subjects import subjects_erased

__all__ = [
    "Change",
    "ChangeFilter",
    "FieldChange",
    "RecoverPreview",
    "RestorePreview",
    "RestoreRefused",
    "Version",
    "deleted_versions",
    "erased_fields",
    "record_versions",
    "recover_preview",
    "snapshot_instance",
    "restore_preview",
    "restored_fields",
    "changes_page",
    "tracked_model",
    "tracked_models",
    "version_as_of",
    "version_of",
]

ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: object
    new: object


@dataclass(frozen=True)
class Version:
    """One history row of a record and the fields it changed from the version before."""

    row: models.Model
    changes: list[FieldChange]

    @property
    def action(self) -> str:
        return ACTIONS.get(self.row.history_type, self.row.history_type)


def tracked_model(label: str) -> type[models.Model]:
    """The history-tracked model named "app_label.Model"; LookupError says what is wrong."""
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise LookupError(f"No model {label!r}: give it as app_label.ModelName.") from exc
    if history_model_of(model) is None:
        raise LookupError(f"{model._meta.label} keeps no history.")
    return model


def record_versions(model: type[models.Model], pk) -> list[Version]:
    """Every version of the record `pk` of `model`, oldest first, each with its changes.

    A record that no longer exists still has its versions (a delete writes the last one).
    """
    history = history_model_of(model)
    rows = list(
        history._base_manager.filter(**{model._meta.pk.attname: pk}).order_by(
            "history_date", "history_id"
        )
    )
    fields = [f for f in history.tracked_fields if not f.primary_key]
    versions, previous = [], None
    for row in rows:
        changes = [
            FieldChange(field.name, _value(previous, field), _value(row, field))
            for field in fields
            if previous is None or _value(previous, field) != _value(row, field)
        ]
        if previous is None:
            changes = [c for c in changes if c.new not in (None, "")]
        versions.append(Version(row=row, changes=changes))
        previous = row
    return versions


def _value(row, field):
    return None if row is None else getattr(row, field.attname)


# Restore --------------------------------------------------------------------------------

#: Soft-delete bookkeeping: a restore changes values, never whether a record is deleted.
_NOT_RESTORED = frozenset({"deleted_at", "deleted_by", "deletion_id"})


class RestoreRefused(Exception):
    """A restore that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class RestorePreview:
    """What restoring `record` to `version` would change, and what stands in the way."""

    record: models.Model
    version: models.Model
    #: The newest version now: a restore confirmed against an older one is stale.
    latest_id: int
    #: current value -> the version's value, per field that would change.
    changes: list[FieldChange]
    #: Foreign keys whose target is gone (or soft-deleted), as sentences.
    missing: list[str]
    #: Unique values another record holds now, as sentences.
    clashes: list[str]
    #: Personal fields left as they are because the subject's data was erased since.
    erased: list[str]
    #: Restrictions of processing (Art. 18) on the record or its subject.
    restricted: bool

    @property
    def problems(self) -> list[str]:
        """Why the restore cannot go ahead; empty when it can."""
        problems = [*self.missing, *self.clashes]
        if self.restricted:
            problems.append(
                "Processing of this record is restricted (Art. 18): lift the restriction "
                "before restoring a version."
            )
        if not self.changes:
            problems.append("The record already has this version's values: nothing to restore.")
        return problems


def restored_fields(model) -> list[models.Field]:
    """The fields a restore copies from a version: tracked, not the key, not the soft-delete
    bookkeeping, not a date the record sets itself (auto_now, `ignore_changes_to`)."""
    history = history_model_of(model)
    options = history_options(model)
    ignored = options.ignore_changes_to if options is not None else frozenset()
    return [
        field
        for field in history.tracked_fields
        if not field.primary_key
        and field.name not in _NOT_RESTORED
        and field.name not in ignored
        and not getattr(field, "auto_now", False)
        and not getattr(field, "auto_now_add", False)
    ]


def version_of(record, history_id) -> models.Model:
    """The history row `history_id` of `record`; RestoreRefused when it is unknown or belongs
    to another record."""
    model = type(record)
    history = history_model_of(model)
    try:
        key = history._meta.pk.to_python(history_id)
    except Exception as exc:
        raise RestoreRefused(f"{history_id!r} is not a version id.") from exc
    version = history._base_manager.filter(pk=key).first()
    if version is None:
        raise RestoreRefused(
            f"There is no version #{history_id} of any {model._meta.verbose_name}: "
            "pick one from the record's history."
        )
    if getattr(version, model._meta.pk.attname) != record.pk:
        raise RestoreRefused(
            f"Version #{history_id} belongs to {model._meta.verbose_name} "
            f"#{getattr(version, model._meta.pk.attname)}, not #{record.pk}: pick one from "
            "this record's history."
        )
    return version


def restore_preview(record, history_id) -> RestorePreview:
    """The preview of restoring `record` to its version `history_id` (nothing is changed)."""
    model = type(record)
    version = version_of(record, history_id)
    history = history_model_of(model)
    latest = (
        history._base_manager.filter(**{model._meta.pk.attname: record.pk})
        .order_by("-history_date", "-history_id")
        .values_list("pk", flat=True)
        .first()
    )
    erased = erased_fields(record)
    fields = [f for f in restored_fields(model) if f.name not in erased]
    changes = [
        FieldChange(f.name, getattr(record, f.attname), getattr(version, f.attname))
        for f in fields
        if getattr(record, f.attname) != getattr(version, f.attname)
    ]
    candidate = model._base_manager.get(pk=record.pk)
    for field in fields:
        setattr(candidate, field.attname, getattr(version, field.attname))
    restricted = holds_active(restrictions=True) and (
        model._base_manager.filter(restricted_q(model), pk=record.pk).exists()
    )
    return RestorePreview(
        record=record,
        version=version,
        latest_id=latest,
        changes=changes,
        missing=_missing_targets(candidate, fields),
        clashes=_unique_clashes(candidate),
        erased=sorted(erased),
        restricted=restricted,
    )


def erased_fields(record) -> set[str]:
    """The personal fields of `record` when an erasure of its subject is on record (the
    erasure log): never restored, whatever a version holds (a version kept by a hold, or
    taken before the history scrub of a backup now restored)."""
    entry = registry.get(type(record))
    if entry is None or not entry.fields:
        return set()
    keys = set()
    row = type(record)._base_manager.filter(pk=record.pk)
    for path in entry.subject_paths:
        keys.update(k for k in row.values_list(path, flat=True) if k is not None)
    return set(entry.fields) if keys and subjects_erased(keys) else set()


def _missing_targets(candidate, fields) -> list[str]:
    problems = []
    for field in fields:
        if not field.is_relation or getattr(candidate, field.attname) is None:
            continue
        target_model = field.related_model
        target_id = getattr(candidate, field.attname)
        target = target_model._base_manager.filter(pk=target_id).first()
        name = target_model._meta.verbose_name
        if target is None:
            problems.append(
                f"{field.verbose_name.capitalize()}: {name} #{target_id} no longer exists; "
                f"recover it first."
            )
        elif getattr(target, "deleted_at", None) is not None:
            problems.append(
                f"{field.verbose_name.capitalize()}: {name} #{target_id} is deleted; "
                "restore it first."
            )
    return problems


def _unique_clashes(candidate) -> list[str]:
    """Unique fields and constraints the version's values would break (another record holds
    the value now), checked as model validation checks them."""
    from django.core.exceptions import ValidationError

    problems = []
    try:
        candidate.validate_unique()
    except ValidationError as exc:
        problems += [f"Unique value taken since: {m}" for m in exc.messages]
    try:
        candidate.validate_constraints()
    except ValidationError as exc:
        problems += [f"Unique value taken since: {m}" for m in exc.messages]
    return problems


# Recover --------------------------------------------------------------------------------


def deleted_versions(model) -> models.QuerySet:
    """The last version of each hard-deleted record of `model` (its delete snapshot), newest
    first: history rows of type "-" whose record is gone from the live table."""
    from django.db.models import Exists, OuterRef

    history = history_model_of(model)
    key = model._meta.pk.attname
    alive = model._base_manager.filter(pk=OuterRef(key))
    later = history._base_manager.filter(**{key: OuterRef(key), "pk__gt": OuterRef("pk")})
    return (
        history._base_manager.filter(history_type="-")
        .exclude(Exists(alive))
        .exclude(Exists(later))
        .order_by("-pk")
    )


@dataclass(frozen=True)
class RecoverPreview:
    """What recovering a hard-deleted record from its delete snapshot would insert."""

    model: type[models.Model]
    version: models.Model
    #: The record as it would be inserted again (not saved).
    candidate: models.Model
    #: (model, delete snapshot) of rows deleted in the same operation, recovered with it.
    related: list[tuple[type[models.Model], models.Model]]
    missing: list[str]
    clashes: list[str]

    @property
    def problems(self) -> list[str]:
        return [*self.missing, *self.clashes]


def recover_preview(model, history_id) -> RecoverPreview:
    """The preview of recovering the record deleted in version `history_id` of `model`."""
    history = history_model_of(model)
    try:
        key = history._meta.pk.to_python(history_id)
    except Exception as exc:
        raise RestoreRefused(f"{history_id!r} is not a version id.") from exc
    version = history._base_manager.filter(pk=key).first()
    if version is None or version.history_type != "-":
        raise RestoreRefused(
            f"Version #{history_id} is not the deletion of a {model._meta.verbose_name}: "
            "pick one from the list of deleted records."
        )
    record_pk = getattr(version, model._meta.pk.attname)
    if model._base_manager.filter(pk=record_pk).exists():
        raise RestoreRefused(
            f"{model._meta.verbose_name.capitalize()} #{record_pk} exists: restore one of its "
            "versions instead."
        )
    candidate = snapshot_instance(model, version)
    related = _deleted_with(model, version)
    missing = _missing_targets(candidate, restored_fields(model))
    clashes = _unique_clashes(candidate)
    for child_model, snapshot in related:
        child = snapshot_instance(child_model, snapshot)
        fields = [
            f
            for f in restored_fields(child_model)
            if not (f.is_relation and f.related_model is model)
        ]
        missing += _missing_targets(child, fields)
        clashes += _unique_clashes(child)
    return RecoverPreview(
        model=model,
        version=version,
        candidate=candidate,
        related=related,
        missing=missing,
        clashes=clashes,
    )


def snapshot_instance(model, version) -> models.Model:
    """An unsaved instance with a version's values (every tracked field, key included)."""
    history = history_model_of(model)
    return model(**{f.attname: getattr(version, f.attname) for f in history.tracked_fields})


def _same_operation(version) -> dict:
    """Lookups for history rows written by the same request, task or moment as `version`."""
    from datetime import timedelta

    request_id = getattr(version, "history_request_id", "")
    task_id = getattr(version, "history_task_id", "")
    if request_id:
        return {"history_request_id": request_id}
    if task_id:
        return {"history_task_id": task_id}
    moment = version.history_date
    return {
        "history_user_id": version.history_user_id,
        "history_date__range": (moment - timedelta(seconds=5), moment + timedelta(seconds=5)),
    }


def _deleted_with(model, version) -> list:
    """Rows of tracked models that a delete of this record cascaded to, deleted in the same
    operation and still gone (one level down)."""
    related = []
    record_pk = getattr(version, model._meta.pk.attname)
    for relation in model._meta.get_fields(include_hidden=True):
        if not (
            (relation.one_to_many or relation.one_to_one)
            and relation.auto_created
            and not relation.concrete
            and relation.on_delete is models.CASCADE
        ):
            continue
        child = relation.related_model
        if history_model_of(child) is None:
            continue
        for snapshot in deleted_versions(child).filter(
            **{relation.field.attname: record_pk}, **_same_operation(version)
        ):
            related.append((child, snapshot))
    return related


# Changes across models -------------------------------------------------------------------


def tracked_models() -> list[type[models.Model]]:
    """Every model that keeps history, in label order."""
    return sorted(
        (m for m in apps.get_models() if history_model_of(m) is not None),
        key=lambda m: m._meta.label,
    )


@dataclass(frozen=True)
class Change:
    """One history row in the list of all changes, with the fields it changed."""

    model: type[models.Model]
    row: models.Model
    #: (field name, old, new); a creation lists the values it set, a deletion nothing.
    changes: list[FieldChange]

    @property
    def action(self) -> str:
        return ACTIONS.get(self.row.history_type, self.row.history_type)

    @property
    def record_id(self):
        return getattr(self.row, self.model._meta.pk.attname)

    @property
    def cursor(self) -> str:
        return f"{self.row.history_date.isoformat()}|{self.model._meta.label}|{self.row.pk}"


@dataclass(frozen=True)
class ChangeFilter:
    """The filters of the list of all changes; each has an index under it."""

    model: type[models.Model] | None = None
    user_id: int | None = None
    action: str | None = None  # "+", "~" or "-"
    since: object = None
    until: object = None
    #: A data subject: only rows about them, through the registry's subject paths.
    subject: models.Model | None = None


def _parse_cursor(cursor: str):
    from django.utils.dateparse import parse_datetime

    try:
        moment, label, history_id = cursor.split("|")
        return parse_datetime(moment), label, int(history_id)
    except (ValueError, TypeError, AttributeError):
        return None


def _scoped(model, flt: ChangeFilter) -> models.QuerySet | None:
    """`model`'s history rows that pass the filter; None when none can."""
    rows = history_model_of(model)._base_manager.all()
    if flt.subject is not None:
        entry = registry.get(model)
        if entry is None:
            return None
        rows = rows.filter(subject_q(entry, flt.subject.pk, history=True))
    if flt.user_id is not None:
        rows = rows.filter(history_user_id=flt.user_id)
    if flt.action:
        rows = rows.filter(history_type=flt.action)
    if flt.since is not None:
        rows = rows.filter(history_date__gte=flt.since)
    if flt.until is not None:
        rows = rows.filter(history_date__lt=flt.until)
    return rows


def changes_page(flt: ChangeFilter, *, models=None, after: str = "", per_page: int = 50):
    """One page of the tracked changes of `models` (default: every tracked model), newest
    first, and the cursor of the next page (None at the end). Keyset pages: each history
    table is read from its date index down to the cursor, `per_page` rows at most, and the
    tables merged; nothing counts a whole table.

    Where the database can order and limit each part of a UNION ALL (PostgreSQL), the
    tables are merged by the database in one query of keys, and the page's rows then read
    by key, one query per table that has some; elsewhere each table is read on its own.
    """
    from django.db import connection
    from django.db.models import Q

    cursor = _parse_cursor(after) if after else None
    scoped = []
    for model in [flt.model] if flt.model else (models or tracked_models()):
        rows = _scoped(model, flt)
        if rows is None:
            continue
        label = model._meta.label
        if cursor is not None:
            moment, cursor_label, history_id = cursor
            if label < cursor_label:
                rows = rows.filter(history_date__lte=moment)
            elif label == cursor_label:
                rows = rows.filter(
                    Q(history_date__lt=moment) | Q(history_date=moment, pk__lt=history_id)
                )
            else:
                rows = rows.filter(history_date__lt=moment)
        scoped.append((model, label, rows.order_by("-history_date", "-pk")))
    if len(scoped) > 1 and connection.features.supports_slicing_ordering_in_compound:
        candidates = _merged(scoped, per_page + 1)
    else:
        candidates = [
            (row.history_date, label, row.pk, model, row)
            for model, label, rows in scoped
            for row in rows[: per_page + 1]
        ]
    candidates.sort(key=lambda c: (c[0], c[1], c[2]), reverse=True)
    page = candidates[:per_page]
    changes = _with_changes([(model, row) for *_, model, row in page])
    more = len(candidates) > per_page
    return changes, (changes[-1].cursor if more and changes else None)


def _merged(scoped, limit: int) -> list:
    """The newest `limit` rows of the tables in `scoped` ((model, label, ordered rows)), as
    (date, label, id, model, row): their keys in one UNION ALL, then the rows by key, each
    with the id of the version before it (for `_with_changes`)."""
    from django.db.models import F, IntegerField, OuterRef, Subquery, Value

    ranked = sorted(scoped, key=lambda s: s[1])  # a table's rank orders as its label
    parts = [
        rows.annotate(
            moment=F("history_date"), table=Value(rank, output_field=IntegerField()), key=F("pk")
        ).values_list("moment", "table", "key")[:limit]
        for rank, (_model, _label, rows) in enumerate(ranked)
    ]
    keys = list(parts[0].union(*parts[1:], all=True).order_by("-moment", "-table", "-key")[:limit])
    wanted: dict = {}
    for _moment, rank, key in keys:
        wanted.setdefault(rank, []).append(key)
    candidates = []
    for rank, ids in wanted.items():
        model, label, _rows = ranked[rank]
        history = history_model_of(model)
        attname = model._meta.pk.attname
        before = history._base_manager.filter(
            **{attname: OuterRef(attname)}, pk__lt=OuterRef("pk")
        ).order_by("-pk")
        for row in history._base_manager.filter(pk__in=ids).annotate(
            previous_id=Subquery(before.values("pk")[:1])
        ):
            candidates.append((row.history_date, label, row.pk, model, row))
    return candidates


def _with_changes(rows) -> list[Change]:
    """Each row with the fields it changed from the version before: the previous versions of
    a page are read in one query per history table, not one per row (rows read with a
    ``previous_id`` already name theirs)."""
    from django.db.models import OuterRef, Subquery

    by_model: dict = {}
    for model, row in rows:
        by_model.setdefault(model, []).append(row)
    previous: dict = {}
    for model, model_rows in by_model.items():
        history = history_model_of(model)
        key = model._meta.pk.attname
        if all(hasattr(r, "previous_id") for r in model_rows):
            links = {r.pk: r.previous_id for r in model_rows}
        else:
            before = history._base_manager.filter(
                **{key: OuterRef(key)}, pk__lt=OuterRef("pk")
            ).order_by("-pk")
            links = dict(
                history._base_manager.filter(pk__in=[r.pk for r in model_rows])
                .annotate(previous_id=Subquery(before.values("pk")[:1]))
                .values_list("pk", "previous_id")
            )
        found = history._base_manager.in_bulk([p for p in links.values() if p is not None])
        for pk, previous_id in links.items():
            previous[(model, pk)] = found.get(previous_id)
    changes = []
    fields_of = {
        model: [f for f in history_model_of(model).tracked_fields if not f.primary_key]
        for model in by_model
    }
    for model, row in rows:
        fields = fields_of[model]
        before = previous.get((model, row.pk))
        if row.history_type == "-":
            diff = []
        elif before is None:
            diff = [
                FieldChange(f.name, None, _value(row, f))
                for f in fields
                if _value(row, f) not in (None, "")
            ]
        else:
            diff = [
                FieldChange(f.name, _value(before, f), _value(row, f))
                for f in fields
                if _value(before, f) != _value(row, f)
            ]
        changes.append(Change(model=model, row=row, changes=diff))
    return changes


def version_as_of(model, pk, moment) -> models.Model | None:
    """The version of record `pk` in force at `moment` (None before it existed, or when it
    was deleted then)."""
    version = (
        history_model_of(model)
        ._base_manager.filter(**{model._meta.pk.attname: pk}, history_date__lte=moment)
        .order_by("-history_date", "-pk")
        .first()
    )
    return None if version is None or version.history_type == "-" else version
