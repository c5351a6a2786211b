"""What the registry asks of every model's admin; the admin site adds it to each ModelAdmin.

The inventory page lives on the admin site (sites.py).
"""

from retention.selectors import held_q
from retention.services import rows_hard_delete
from retention.softdelete import is_soft_delete_model

from .registry import registry

__all__ = ["RegistryAdminMixin", "with_registry_rules"]


class RegistryAdminMixin:
    """The registry's rules on a model admin, read at call time (the registry is filled after
    the admin autodiscovers):

    - deleting a registered model's rows is `rows_hard_delete`: refused for rows under a
      legal hold, and a ledger entry in the delete's transaction (a soft-delete model's
      admin hides rows instead, and history records it);
    - a registered model's retention basis date is read-only: editing it would move when
      the record is purged.
    """

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        entry = registry.get(self.model)
        if entry is not None and entry.retention_basis and entry.retention_basis not in fields:
            fields.append(entry.retention_basis)
        return fields

    def get_deleted_objects(self, objs, request):
        """Django's summary, with rows under a legal hold listed as protected."""
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        if registry.is_registered(self.model):
            pks = [obj.pk for obj in objs]
            held = self.model._base_manager.filter(held_q(self.model), pk__in=pks)
            protected = [*protected, *(f"{obj} (under a legal hold)" for obj in held)]
        return to_delete, model_count, perms_needed, protected

    def delete_model(self, request, obj):
        if self._deletes_for_good():
            self._hard_delete(request, self.model._base_manager.filter(pk=obj.pk))
        else:
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        if self._deletes_for_good():
            self._hard_delete(request, queryset)
        else:
            super().delete_queryset(request, queryset)

    def _deletes_for_good(self) -> bool:
        return registry.is_registered(self.model) and not is_soft_delete_model(self.model)

    def _hard_delete(self, request, queryset):
        rows_hard_delete(queryset=queryset, actor=request.user, reason="")


def with_registry_rules(admin_class):
    """`admin_class` with `RegistryAdminMixin` in front (itself if it has it already)."""
    if issubclass(admin_class, RegistryAdminMixin):
        return admin_class
    attrs = {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__}
    return type(admin_class.__name__, (RegistryAdminMixin, admin_class), attrs)
