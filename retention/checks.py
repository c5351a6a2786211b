"""System checks of the retention app."""

from django.apps import apps
from django.core.checks import Error, Tags, Warning, register

from compliance.registry import registry

from .holds import RestrictedQuerySet
from .softdelete import is_soft_delete_model

__all__ = ["restriction_check", "soft_delete_check", "soft_delete_errors"]

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


@register(Tags.models)
def restriction_check(app_configs, **kwargs):
    """retention.W001: a registered model's queryset refuses changes to restricted rows."""
    warnings = []
    for entry in registry.entries():
        queryset = entry.model._default_manager.get_queryset()
        if entry.restriction_applies and not isinstance(queryset, RestrictedQuerySet):
            warnings.append(
                Warning(
                    f"{entry.label}'s default manager does not refuse update() and delete() "
                    "of rows whose processing is restricted (Art. 18); save() and delete() "
                    "of single rows are refused all the same.",
                    hint="Give it objects = RestrictedQuerySet.as_manager() (retention.holds), "
                    "or build its manager from a subclass of RestrictedQuerySet.",
                    obj=entry.model,
                    id="retention.W001",
                )
            )
    return warnings
