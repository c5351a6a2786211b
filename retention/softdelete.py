"""Soft delete: a model base whose rows are hidden, not lost, when deleted.

``objects`` hides deleted rows (and so do related managers and ``prefetch_related``, which
Django builds from the default manager); ``all_objects`` and ``deleted_objects`` do not.
``QuerySet.delete()`` is soft and set-based: one UPDATE per model, including the dependants
whose foreign key cascades, all marked with one ``deletion_id`` so that a restore brings back
exactly what that delete hid. Each of these operations writes its history rows set-based,
with the change context. Use the services in `retention.services` from the admin, commands
and tasks: they check permissions and write the ledger.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from versions.context import current
from versions.setbased import rows_update_with_history

from .holds import RestrictedQuerySet, restriction_refuse

__all__ = [
    "NOT_DELETED",
    "SoftDeleteModel",
    "SoftDeleteQuerySet",
    "cascade_dependants",
    "is_soft_delete_model",
]

#: The condition of partial indexes and unique constraints: only live rows count.
NOT_DELETED = Q(deleted_at__isnull=True)


def is_soft_delete_model(model) -> bool:
    return isinstance(model, type) and issubclass(model, SoftDeleteModel)


def cascade_dependants(model):
    """(dependant model, foreign key) pairs whose rows a soft delete of `model` hides too."""
    for relation in model._meta.related_objects:
        cascades = (relation.one_to_many or relation.one_to_one) and (
            relation.on_delete is models.CASCADE
        )
        if cascades and is_soft_delete_model(relation.related_model):
            yield relation.related_model, relation.field


class SoftDeleteQuerySet(RestrictedQuerySet):
    """A queryset whose ``delete()`` hides rows; none of its changes reaches a row whose
    processing is restricted (Art. 18)."""

    def delete(self):
        """Hide the rows and their cascading dependants; return (count, per-model counts)."""
        return self.soft_delete()

    delete.alters_data = True
    delete.queryset_only = True

    def soft_delete(self, *, deletion_id: uuid.UUID | None = None):
        restriction_refuse(self, doing="delete", dependants=2)
        deletion_id = deletion_id or uuid.uuid4()
        user = current().authenticated_user
        values = {
            "deleted_at": timezone.now(),
            "deleted_by_id": None if user is None else user.pk,
            "deletion_id": deletion_id,
        }
        hidden: dict[type[models.Model], int] = {}
        with transaction.atomic(using=self.db):
            _hide(self.model, self.filter(NOT_DELETED), values, hidden)
        return _counted(hidden)

    soft_delete.alters_data = True

    def restore(self):
        """Bring back these deleted rows and what their delete hid with them.

        Rows hidden by an earlier, separate delete stay hidden.
        """
        restriction_refuse(self, doing="restore", dependants=2)
        restored: dict[type[models.Model], int] = {}
        with transaction.atomic(using=self.db):
            _unhide(self.model, self.filter(deleted_at__isnull=False), restored)
        return _counted(restored)

    restore.alters_data = True

    def hard_delete(self):
        """Delete the rows for good, deleted or not, with Django's cascade.

        simple-history records each deletion with the change context. Purges of many rows go
        through the batch engine instead, which records them set-based.
        """
        return models.QuerySet.delete(self)

    hard_delete.alters_data = True


class SoftDeleteManager(models.Manager.from_queryset(SoftDeleteQuerySet)):
    """``objects``: live rows only. Related managers and prefetches inherit this."""

    def get_queryset(self):
        return super().get_queryset().filter(NOT_DELETED)


class DeletedManager(models.Manager.from_queryset(SoftDeleteQuerySet)):
    """``deleted_objects``: deleted rows only."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=False)


class AllObjectsManager(models.Manager.from_queryset(SoftDeleteQuerySet)):
    """``all_objects``: live and deleted rows."""


class SoftDeleteModel(models.Model):
    """Base of models whose rows are soft-deleted.

    Give unique fields a partial constraint instead of ``unique=True``
    (``UniqueConstraint(fields=[...], condition=NOT_DELETED, name=...)``) so a deleted row
    never blocks a new one; subclasses' Meta must inherit ``SoftDeleteModel.Meta`` for the
    extra permissions (checked by retention.E002).
    """

    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,  # who deleted outlives the user account
    )
    deletion_id = models.UUIDField(
        null=True,
        blank=True,
        editable=False,
        help_text="Shared by every row one delete hid; a restore brings back exactly those.",
    )

    objects = SoftDeleteManager()
    all_objects = AllObjectsManager()
    deleted_objects = DeletedManager()

    class Meta:
        abstract = True
        # Hidden rows are seen only with view_deleted; deleting for good is hard_delete.
        default_permissions = ("add", "change", "delete", "view", "view_deleted", "hard_delete")

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def validate_constraints(self, exclude=None):
        # Forms exclude deleted_at (not editable), and Django skips a conditional constraint
        # whose condition names an excluded field: keep it, so partial uniqueness is checked.
        return super().validate_constraints(exclude=set(exclude or ()) - {"deleted_at"})

    def delete(self, using=None, keep_parents=False):
        """Hide this row and its cascading dependants (a soft delete)."""
        return type(self).all_objects.using(using or self._state.db).filter(pk=self.pk).delete()

    def hard_delete(self):
        return type(self).all_objects.filter(pk=self.pk).hard_delete()

    def restore(self):
        return type(self).all_objects.filter(pk=self.pk).restore()


def _counted(per_model):
    """What QuerySet.delete() returns: the total and the count per model label."""
    counts = {model._meta.label: n for model, n in per_model.items()}
    return sum(counts.values()), counts


def _hide(model, queryset, values, hidden):
    """UPDATE the live rows of `queryset`, then their dependants, all with one deletion id;
    each UPDATE writes its history rows with it."""
    updated = rows_update_with_history(queryset, values)
    if not updated:
        return
    hidden[model] = hidden.get(model, 0) + updated
    marked = model.all_objects.filter(deletion_id=values["deletion_id"])
    for dependant, field in cascade_dependants(model):
        rows = dependant.all_objects.filter(NOT_DELETED, **{f"{field.name}__in": marked})
        _hide(dependant, rows, values, hidden)


def _unhide(model, queryset, restored):
    """Restore the rows of `queryset` and, below them, the rows their delete hid with them."""
    found = list(queryset.values_list("pk", "deletion_id"))
    if not found:
        return
    pks = [pk for pk, _ in found]
    deletion_ids = {deletion_id for _, deletion_id in found}
    # Dependants first: they are found through their parents' deletion id, which goes.
    for dependant, field in cascade_dependants(model):
        dependants = dependant.all_objects.filter(
            deletion_id__in=deletion_ids, **{f"{field.name}__in": pks}
        )
        _unhide(dependant, dependants, restored)
    rows = model.all_objects.filter(pk__in=pks)
    rows_update_with_history(rows, {"deleted_at": None, "deleted_by_id": None, "deletion_id": None})
    restored[model] = restored.get(model, 0) + len(pks)
