"""Read queries of the versions app: a record's versions and what each one changed."""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db import models

from .setbased import history_model_of

__all__ = ["FieldChange", "Version", "record_versions", "tracked_model"]

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
