"""What the registry asks of every model's admin; the admin site adds it to each ModelAdmin.

The inventory page lives on the admin site (sites.py).
"""

from contextlib import nullcontext

from django import forms
from django.contrib import admin, messages
from django.db.models import BooleanField, ExpressionWrapper
from django.urls import reverse
from django.utils.html import format_html

from retention.holds import restriction_override
from retention.selectors import held_q, holds_active, restricted_q
from retention.services import rows_hard_delete
from retention.softdelete import is_soft_delete_model
from versions.context import change_context

from .registry import registry

RESTRICTION_REASON = "restriction_reason"

__all__ = ["RegistryAdminMixin", "with_registry_rules"]


class RegistryAdminMixin:
    """The registry's rules on a model admin, read at call time (the registry is filled after
    the admin autodiscovers):

    - deleting a registered model's rows is `rows_hard_delete`: refused for rows under a
      legal hold, and a ledger entry in the delete's transaction (a soft-delete model's
      admin hides rows instead, and history records it);
    - a registered model's retention basis date is read-only: editing it would move when
      the record is purged;
    - rows whose processing is restricted (Art. 18) are marked in the list and on their
      page, and saving a change to one needs a reason, recorded in its history (the one
      change the admin makes to them: a rectification the subject may ask for, Art. 16);
      bulk actions, list edits and deletes that reach them are refused with a message;
    - the subject model's page links to the subject overview.
    """

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if registry.is_registered(self.model) and holds_active(restrictions=True):
            restricted = ExpressionWrapper(restricted_q(self.model), output_field=BooleanField())
            queryset = queryset.annotate(_processing_restricted=restricted)
        return queryset

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if registry.is_registered(self.model) and holds_active(restrictions=True):
            columns.append("processing_restricted")
        return columns

    @admin.display(description="Processing")
    def processing_restricted(self, obj):
        if getattr(obj, "_processing_restricted", False):
            return format_html('<span class="restricted-marker">{}</span>', "Restricted")
        return ""

    def _is_restricted(self, obj) -> bool:
        if obj is None or not registry.is_registered(self.model):
            return False
        if hasattr(obj, "_processing_restricted"):
            return obj._processing_restricted
        return self.model._base_manager.filter(restricted_q(self.model), pk=obj.pk).exists()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if self._is_restricted(obj):
            kwargs["form"] = type(
                "RestrictedChangeForm",
                (kwargs.get("form", self.form),),
                {
                    RESTRICTION_REASON: forms.CharField(
                        label="Reason for changing restricted data",
                        widget=forms.Textarea(attrs={"rows": 2}),
                        help_text="Processing of this record is restricted (Art. 18): say "
                        "why it must change. The reason is kept in its history.",
                    )
                },
            )
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self._is_restricted(obj) and self.has_change_permission(request, obj):
            fieldsets = [
                *[fs for fs in fieldsets if RESTRICTION_REASON not in fs[1].get("fields", ())],
                ("Restricted processing (Art. 18)", {"fields": [RESTRICTION_REASON]}),
            ]
        return fieldsets

    def get_fields(self, request, obj=None):
        return [f for f in super().get_fields(request, obj) if f != RESTRICTION_REASON]

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data.get(RESTRICTION_REASON, "")
        with (
            change_context(reason=reason) if reason else nullcontext(),
            restriction_override(reason=reason) if reason else nullcontext(),
        ):
            super().save_model(request, obj, form, change)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        if self.model is registry.subject_model() and object_id:
            extra_context["subject_overview_url"] = reverse(
                "admin:compliance_subject_overview",
                args=[object_id],
                current_app=self.admin_site.name,
            )
        obj = self.get_object(request, object_id) if object_id else None
        if request.method == "GET" and self._is_restricted(obj):
            self.message_user(
                request,
                "Processing of this record is restricted (Art. 18): it is kept out of purges "
                "and erasures, and a change needs a reason.",
                messages.WARNING,
            )
        return super().change_view(request, object_id, form_url, extra_context)

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
