"""Read queries of the compliance app."""

from __future__ import annotations

from dataclasses import dataclass

from .anonymisers import get_anonymiser
from .registry import Category, Erasure, ModelPrivacy, registry

__all__ = ["InventoryField", "InventoryRow", "inventory"]


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
