"""Read queries of the retention app: what a policy targets, which rows it may remove, and
which rows legal holds keep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import connection, models
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Cast
from django.utils import timezone

from compliance.registry import registry

from .models import RESTRICTION_GROUNDS, LegalHold, PolicyAction, RetentionPolicy
from .softdelete import is_soft_delete_model

__all__ = [
    "EXCLUSION_LOOKUPS",
    "PolicyScope",
    "held_q",
    "holds_active",
    "holds_lock",
    "subject_holds",
    "protected_q",
    "policy_scope",
    "restricted_q",
    "policy_targets",
    "policy_validate",
]

# Lookups an exclusion may use, each with the kind of value it takes.
EXCLUSION_LOOKUPS = {
    "isnull": bool,
    "exact": None,
    "gt": None,
    "gte": None,
    "lt": None,
    "lte": None,
    "in": list,
    "startswith": str,
    "endswith": str,
}


def _tracked_model(model):
    """The live model of a history model, else the model itself."""
    return getattr(model, "instance_type", model)


def policy_targets() -> list[type[models.Model]]:
    """Registered models and their history models: what a policy may target."""
    targets = []
    for entry in registry.entries():
        targets.append(entry.model)
        name = getattr(entry.model._meta, "simple_history_manager_attribute", None)
        if name:
            targets.append(getattr(entry.model, name).model)
    return targets


def _default_basis(model) -> str:
    if model is not _tracked_model(model):
        return "history_date"
    entry = registry.get(model)
    return entry.retention_basis if entry else ""


def policy_validate(policy: RetentionPolicy) -> None:
    """Raise ValidationError (per field) unless the policy can run as written."""
    model = policy.target.model_class() if policy.target_id else None
    if model is None:
        raise ValidationError({"target": "Choose a model."})
    if model not in policy_targets():
        raise ValidationError(
            {"target": f"{model._meta.label} is neither in the registry nor a history of one."}
        )
    errors = {}
    basis = policy.basis_field or _default_basis(model)
    try:
        field = model._meta.get_field(basis) if basis else None
    except FieldDoesNotExist:
        field = None
    if not isinstance(field, models.DateField):
        errors["basis_field"] = (
            f"{model._meta.label} has no date or datetime field '{basis}'."
            if basis
            else f"{model._meta.label} declares no retention basis: name a date field."
        )
    if policy.action == PolicyAction.SOFT_DELETE and not is_soft_delete_model(model):
        errors["action"] = f"{model._meta.label} has no soft delete: choose another action."
    if policy.action == PolicyAction.ANONYMISE:
        entry = registry.get(_tracked_model(model))
        present = {f.name for f in model._meta.concrete_fields}
        if entry is None or not set(entry.fields) & present:
            errors["action"] = f"The registry declares no personal fields of {model._meta.label}."
    try:
        exclusions_q(model, policy.exclusions)
    except ValidationError as exc:
        errors["exclusions"] = exc.messages
    if errors:
        raise ValidationError(errors)


def exclusions_q(model, exclusions) -> Q:
    """The structured exclusions as one Q, validated against the model's fields."""
    if not isinstance(exclusions, list):
        raise ValidationError('Exclusions are a list: [{"field": …, "lookup": …, "value": …}].')
    q = Q()
    for number, item in enumerate(exclusions, 1):
        if not isinstance(item, dict) or set(item) != {"field", "lookup", "value"}:
            raise ValidationError(
                f'Exclusion {number}: give exactly "field", "lookup" and "value".'
            )
        name, lookup, value = item["field"], item["lookup"], item["value"]
        try:
            field = model._meta.get_field(name)
        except (FieldDoesNotExist, TypeError):
            raise ValidationError(
                f"Exclusion {number}: {model._meta.label} has no field {name!r}."
            ) from None
        if not field.concrete or field.many_to_many:
            raise ValidationError(f"Exclusion {number}: {name!r} is not a column.")
        if lookup not in EXCLUSION_LOOKUPS:
            raise ValidationError(
                f"Exclusion {number}: lookup {lookup!r} is not one of "
                f"{', '.join(EXCLUSION_LOOKUPS)}."
            )
        kind = EXCLUSION_LOOKUPS[lookup]
        if kind is not None and not isinstance(value, kind):
            raise ValidationError(f"Exclusion {number}: {lookup!r} takes a {kind.__name__} value.")
        try:
            if kind is None:
                field.to_python(value)
            elif kind is list:
                [field.to_python(v) for v in value]
        except ValidationError as exc:
            raise ValidationError(f"Exclusion {number}: {exc.messages[0]}") from None
        q |= Q(**{f"{field.name}__{lookup}": value})
    return q


def held_q(model, *, dependants: int = 2, holds: models.QuerySet | None = None) -> Q:
    """Rows of `model` kept by an active legal hold: on their subject, on themselves, or on a
    row their deletion would cascade to (`dependants` levels down). `holds` narrows the holds
    considered (e.g. to one ground); default every hold.

    The holds are subqueries, not a list read once: every statement of a long purge sees
    a hold placed while it runs.
    """
    tracked = _tracked_model(model)
    # History rows copy the record's key under its own name; live rows have it as pk.
    key = tracked._meta.pk.attname if model is not tracked else "pk"
    q = Q(**{f"{key}__in": _held_keys(tracked, holds)})
    entry = registry.get(tracked)
    if entry is not None:
        subject_keys = _held_keys(registry.subject_model(), holds)
        for path in entry.subject_lookups(history=model is not tracked):
            q |= Q(**{f"{path}__in": subject_keys})
    if dependants and model is tracked:
        for dependant, field in _cascades(model):
            below = dependant._base_manager.filter(
                held_q(dependant, dependants=dependants - 1, holds=holds),
                **{field.name: OuterRef("pk")},
            )
            q |= Q(Exists(below))
    return q


def restricted_q(model) -> Q:
    """Rows of `model` whose processing is restricted (Art. 18): a restriction on their
    subject or on themselves."""
    return held_q(
        model, dependants=0, holds=LegalHold.objects.filter(ground__in=RESTRICTION_GROUNDS)
    )


def _held_keys(model, holds=None):
    """The keys of `model`'s rows under an active hold, as a subquery of the model's key type."""
    pk = model._meta.pk
    key_type = models.BigIntegerField() if isinstance(pk, models.IntegerField) else type(pk)()
    return (
        (LegalHold.objects.all() if holds is None else holds)
        .filter(released_at__isnull=True, content_type=ContentType.objects.get_for_model(model))
        .annotate(key=Cast("object_id", output_field=key_type))
        .values("key")
    )


def _cascades(model):
    """(dependant model, foreign key) of every registered model a delete of `model` cascades to."""
    for relation in model._meta.get_fields(include_hidden=True):
        if (
            (relation.one_to_many or relation.one_to_one)
            and relation.auto_created
            and not relation.concrete
            and relation.on_delete is models.CASCADE
            and registry.is_registered(relation.related_model)
        ):
            yield relation.related_model, relation.field


def protected_q(model) -> Q:
    """Rows of `model` that other rows keep with PROTECT or RESTRICT: deleting them would fail."""
    q = Q(pk__in=[])
    for relation in model._meta.get_fields(include_hidden=True):
        if (
            (relation.one_to_many or relation.one_to_one)
            and relation.auto_created
            and not relation.concrete
            and relation.on_delete in (models.PROTECT, models.RESTRICT)
        ):
            referrers = relation.related_model._base_manager.filter(
                **{relation.field.name: OuterRef("pk")}
            )
            q |= Q(Exists(referrers))
    return q


@dataclass(frozen=True)
class PolicyScope:
    """A policy's rows now: expired (by age), minus exclusions, minus holds."""

    model: type[models.Model]
    cutoff: object
    expired: models.QuerySet
    excluded: models.QuerySet
    held: models.QuerySet
    eligible: models.QuerySet


def policy_scope(policy: RetentionPolicy, *, now=None) -> PolicyScope | None:
    """The querysets a purge of `policy` works on; None when the policy keeps rows forever."""
    if policy.period_days is None:
        return None
    model = policy.target.model_class()
    cutoff = (now or timezone.now()) - timedelta(days=policy.period_days)
    basis = policy.basis_field or _default_basis(model)
    if is_soft_delete_model(model):
        # A soft delete sees live rows; deleting for good or anonymising sees every row.
        manager = model.objects if policy.action == PolicyAction.SOFT_DELETE else model.all_objects
    else:
        manager = model._default_manager
    expired = manager.filter(**{f"{basis}__lt": cutoff})
    exclusions = exclusions_q(model, policy.exclusions)
    if policy.action == PolicyAction.HARD_DELETE:
        # Rows other records keep (an order keeps its customer) are left, counted as excluded.
        exclusions |= protected_q(model)
    excluded = expired.filter(exclusions) if exclusions else expired.none()
    kept = expired.exclude(exclusions) if exclusions else expired
    if not holds_active():
        # No hold anywhere: no hold subqueries (a purge re-checks before each batch).
        return PolicyScope(model, cutoff, expired, excluded, kept.none(), kept)
    held = held_q(model)
    return PolicyScope(model, cutoff, expired, excluded, kept.filter(held), kept.exclude(held))


def holds_lock() -> None:
    """Keep new holds out until the current transaction ends (PostgreSQL: a SHARE lock on
    the holds table, which a placed or released hold waits for; readers and other deletes
    go on). A check of the holds made after it stays true until the delete it guards
    commits; a hold placed meanwhile waits and applies from then on."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {LegalHold._meta.db_table} IN SHARE MODE")


def holds_active(*, restrictions: bool = False) -> bool:
    """Whether any legal hold (with `restrictions`: any restriction) is in force."""
    holds = LegalHold.objects.filter(released_at__isnull=True)
    if restrictions:
        holds = holds.filter(ground__in=RESTRICTION_GROUNDS)
    return holds.exists()


def subject_holds(subject) -> models.QuerySet:
    """Active holds and restrictions on a subject as a whole (not on one of their rows)."""
    return LegalHold.objects.filter(
        released_at__isnull=True,
        content_type=ContentType.objects.get_for_model(type(subject)),
        object_id=str(subject.pk),
    )
