"""What the registry asks of every model's admin; the admin site adds it to each ModelAdmin.

The inventory page lives on the admin site (sites.py).
"""

from collections import Counter
from contextlib import contextmanager

from django.db import router, transaction
from django.db.models.deletion import Collector

from versions.models import LedgerAction
from versions.services import ledger_append

from .registry import registry

__all__ = ["RegistryAdminMixin", "with_registry_rules"]


class RegistryAdminMixin:
    """Deletes that reach registered rows are ledger entries, written in the delete's
    transaction; a registered model's retention basis date is read-only.

    The registry is read at call time: it is filled after the admin autodiscovers.
    """

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        entry = registry.get(self.model)
        # Editing the date would move when the record is purged.
        if entry is not None and entry.retention_basis and entry.retention_basis not in fields:
            fields.append(entry.retention_basis)
        return fields

    def delete_model(self, request, obj):
        with _ledgered_delete(request, self.model, [obj]):
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with _ledgered_delete(request, self.model, queryset):
            super().delete_queryset(request, queryset)


def with_registry_rules(admin_class):
    """`admin_class` with `RegistryAdminMixin` in front (itself if it has it already)."""
    if issubclass(admin_class, RegistryAdminMixin):
        return admin_class
    attrs = {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__}
    return type(admin_class.__name__, (RegistryAdminMixin, admin_class), attrs)


@contextmanager
def _ledgered_delete(request, model, objs):
    """Run the delete with a hard_delete ledger entry in one transaction, when the delete
    (or its cascade) reaches a registered model. Counts by model; never the rows' data."""
    using = router.db_for_write(model)
    with transaction.atomic(using=using):
        counts = _deletion_counts(objs, using)
        yield
        if any(registry.is_registered(label_model) for label_model in counts):
            ledger_append(
                action=LedgerAction.HARD_DELETE,
                actor=request.user,
                reason="",
                target=model._meta.label,
                counts={m._meta.label: n for m, n in sorted(counts.items(), key=_by_label)},
            )


def _by_label(item):
    return item[0]._meta.label


def _deletion_counts(objs, using) -> Counter:
    """Rows a delete of `objs` removes, by model, cascade included (as Django collects it)."""
    collector = Collector(using=using)
    collector.collect(objs)
    counts = Counter()
    for model, instances in collector.data.items():
        counts[model._meta.concrete_model] += len(instances)
    for queryset in collector.fast_deletes:
        counts[queryset.model._meta.concrete_model] += queryset.count()
    return Counter({model: n for model, n in counts.items() if n})
