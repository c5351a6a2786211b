"""System checks of the retention app."""

from django.apps import apps
from django.core.checks import Error, Tags, register

from .softdelete import is_soft_delete_model

__all__ = ["soft_delete_check", "soft_delete_errors"]

EXTRA_PERMISSIONS = ("view_deleted", "hard_delete")


@register(Tags.models)
def soft_delete_check(app_configs, **kwargs):
    """retention.E001–E002 over every soft-delete model."""
    errors = []
    for model in apps.get_models():
        if is_soft_delete_model(model):
            errors.extend(soft_delete_errors(model))
    return errors


def soft_delete_errors(model) -> list[Error]:
    """retention.E001: no plain unique field; E002: the soft-delete permissions are kept."""
    errors = []
    label = model._meta.label
    for field in model._meta.concrete_fields:
        if field.unique and not field.primary_key:
            errors.append(
                Error(
                    f"{label}.{field.name} is unique=True on a soft-delete model: a deleted "
                    "row would block a new one with the same value.",
                    hint="Drop unique=True and add UniqueConstraint(fields=["
                    f"'{field.name}'], condition=NOT_DELETED, name=...) to Meta.constraints.",
                    obj=model,
                    id="retention.E001",
                )
            )
    missing = [p for p in EXTRA_PERMISSIONS if p not in model._meta.default_permissions]
    if missing:
        errors.append(
            Error(
                f"{label} lacks the {', '.join(missing)} permission(s) of soft delete.",
                hint="Let its Meta inherit the base's: class Meta(SoftDeleteModel.Meta).",
                obj=model,
                id="retention.E002",
            )
        )
    return errors
