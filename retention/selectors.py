"""Read queries of the retention app: what a policy targets, which rows it may remove, and
which rows legal holds keep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from compliance.registry import registry

from .holds import held_q, holds_active, live_model, restricted_q, subject_holds
from .models import PolicyAction, RetentionPolicy
from .softdelete import is_soft_delete_model

__all__ = [
    "EXCLUSION_LOOKUPS",
    "PolicyScope",
    "held_q",
    "holds_active",
    "subject_holds",
    "protected_q",
    "policy_scope",
    "restricted_q",
    "subject_alive_q",
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
    if model is not live_model(model):
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
        entry = registry.get(live_model(model))
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


def subject_alive_q(entry) -> Q:
    """Rows of `entry`'s model whose subject row (through any subject path) still exists."""
    subject_model = registry.subject_model()
    q = Q(pk__in=[])
    for path in entry.subject_lookups():
        q |= Q(Exists(subject_model._base_manager.filter(pk=OuterRef(path))))
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
    entry = registry.get(model)
    if entry is not None and entry.outlives_subject:
        exclusions |= subject_alive_q(entry)  # evidence is kept while its subject row exists
    excluded = expired.filter(exclusions) if exclusions else expired.none()
    kept = expired.exclude(exclusions) if exclusions else expired
    if not holds_active():
        # No hold anywhere: no hold subqueries (a purge re-checks before each batch).
        return PolicyScope(model, cutoff, expired, excluded, kept.none(), kept)
    held = held_q(model)
    return PolicyScope(model, cutoff, expired, excluded, kept.filter(held), kept.exclude(held))
