"""Admin for soft-delete models: an Active / Deleted / All filter, marked rows, and the
"Restore" and "Delete permanently" actions with confirmation pages like ``delete_selected``."""

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.text import capfirst

from .services import RetentionRefused, rows_hard_delete, rows_restore, rows_soft_delete
from .softdelete import cascade_dependants

__all__ = ["DeletedFilter", "SoftDeleteAdmin"]


def _can_view_deleted(request, model) -> bool:
    opts = model._meta
    return request.user.has_perm(f"{opts.app_label}.view_deleted_{opts.model_name}")


class DeletedFilter(admin.SimpleListFilter):
    """Active rows by default; deleted and all rows for those who may see deleted rows."""

    title = "state"
    parameter_name = "state"
    ACTIVE, DELETED, ALL = "active", "deleted", "all"

    def lookups(self, request, model_admin):
        return [(self.ACTIVE, "Active"), (self.DELETED, "Deleted"), (self.ALL, "All")]

    def has_output(self):
        return True

    def value(self):
        return super().value() or self.ACTIVE

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": self.value() == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        if self.value() == self.DELETED:
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == self.ALL:
            return queryset
        return queryset.filter(deleted_at__isnull=True)


class SoftDeleteAdmin(admin.ModelAdmin):
    """Mix into the ModelAdmin of a `SoftDeleteModel` (before the admin base class).

    Deleting in the admin hides rows (the delete permission); "Restore" needs change and
    view_deleted; "Delete permanently" needs hard_delete and writes a ledger entry.
    """

    confirmation_template = "admin/retention/confirm_action.html"

    def get_queryset(self, request):
        if not _can_view_deleted(request, self.model):
            return super().get_queryset(request)
        queryset = self.model.all_objects.get_queryset()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if _can_view_deleted(request, self.model):
            filters.insert(0, DeletedFilter)
        return filters

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if _can_view_deleted(request, self.model):
            columns.append("deletion_state")
        return columns

    @admin.display(description="deleted")
    def deletion_state(self, obj):
        if obj.deleted_at is None:
            return ""
        return format_html(
            '<span class="deleted-marker" title="deleted by user #{}">Deleted {}</span>',
            obj.deleted_by_id or "system",
            obj.deleted_at.strftime("%Y-%m-%d %H:%M"),
        )

    def has_change_permission(self, request, obj=None):
        # A deleted row is evidence of what was hidden: restore it before editing it.
        if obj is not None and obj.deleted_at is not None:
            return False
        return super().has_change_permission(request, obj)

    def has_restore_permission(self, request):
        opts = self.model._meta
        return request.user.has_perm(
            f"{opts.app_label}.change_{opts.model_name}"
        ) and _can_view_deleted(request, self.model)

    def has_hard_delete_permission(self, request):
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.hard_delete_{opts.model_name}")

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not _can_view_deleted(request, self.model):
            actions.pop("restore_selected", None)
        return actions

    # Deleting through the admin's own delete view and action is a soft delete.

    def delete_model(self, request, obj):
        rows_soft_delete(
            queryset=self.model.all_objects.filter(pk=obj.pk), actor=request.user, reason=""
        )

    def delete_queryset(self, request, queryset):
        rows_soft_delete(queryset=queryset, actor=request.user, reason="")

    def get_deleted_objects(self, objs, request):
        """What a soft delete hides: the rows and their cascading soft-delete dependants."""
        objs = list(objs)
        to_hide = [str(obj) for obj in objs]
        model_count = {self.model._meta.verbose_name_plural: len(objs)}
        pks = [obj.pk for obj in objs]
        for dependant, field in cascade_dependants(self.model):
            rows = list(dependant.objects.filter(**{f"{field.attname}__in": pks}))
            if rows:
                to_hide.append([f"{capfirst(dependant._meta.verbose_name)}: {r}" for r in rows])
                model_count[dependant._meta.verbose_name_plural] = len(rows)
        opts = self.model._meta
        perms_needed = set()
        if not request.user.has_perm(f"{opts.app_label}.delete_{opts.model_name}"):
            perms_needed.add(opts.verbose_name)
        return to_hide, model_count, perms_needed, []

    @admin.action(permissions=["restore"], description="Restore selected %(verbose_name_plural)s")
    def restore_selected(self, request, queryset):
        return self._confirm(
            request,
            queryset.filter(deleted_at__isnull=False),
            action="restore_selected",
            title="Restore",
            question="Restore these deleted {names}? Rows hidden together with them come back "
            "too; rows deleted separately stay deleted.",
            service=rows_restore,
            done="Restored {count} row(s): {detail}.",
        )

    @admin.action(
        permissions=["hard_delete"],
        description="Delete selected %(verbose_name_plural)s permanently",
    )
    def hard_delete_selected(self, request, queryset):
        return self._confirm(
            request,
            queryset,
            action="hard_delete_selected",
            title="Delete permanently",
            question="Delete these {names} for good? This cannot be undone: the rows and "
            "their dependants are removed, and only their history keeps what they held.",
            service=rows_hard_delete,
            done="Deleted {count} row(s) permanently: {detail}. The ledger records it.",
            reason_required=True,
        )

    def _confirm(self, request, queryset, *, action, title, question, service, done, **kw):
        """delete_selected's pattern: a confirmation page, then the service on POST."""
        opts = self.model._meta
        names = opts.verbose_name_plural
        if not queryset.exists():
            self.message_user(request, f"None of the selected {names} applies.", messages.WARNING)
            return None
        reason = request.POST.get("reason", "").strip()
        error = ""
        if request.POST.get("post") == "yes":
            if kw.get("reason_required") and not reason:
                error = "Give a reason: it is recorded in the ledger and the history."
            else:
                try:
                    result = service(queryset=queryset, actor=request.user, reason=reason)
                except RetentionRefused as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    return None
                except PermissionDenied:
                    raise
                detail = ", ".join(
                    f"{n} {model_ngettext(apps.get_model(label), n)}"
                    for label, n in result.per_model.items()
                )
                self.message_user(
                    request, done.format(count=result.total, detail=detail), messages.SUCCESS
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}: are you sure?",
            "action_title": title,
            "question": question.format(names=names),
            "objects": list(queryset),
            "queryset": queryset,
            "opts": opts,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "reason": reason,
            "reason_required": kw.get("reason_required", False),
            "error": error,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.confirmation_template, context)

    actions = ["restore_selected", "hard_delete_selected"]
