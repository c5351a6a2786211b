"""What the registry asks of every model's admin (the admin site adds it to each
ModelAdmin), and the compliance app's own admin: erasure certificates and the erasure page.

The inventory page lives on the admin site (sites.py).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join

from retention.selectors import held_q
from retention.services import rows_hard_delete
from retention.softdelete import is_soft_delete_model

from .models import ErasureCertificate
from .registry import registry
from .selectors import erasure_plan
from .services import ERASE_PERMISSION, NOTHING_LEFT, ComplianceRefused, subject_erase

__all__ = ["ErasureCertificateAdmin", "RegistryAdminMixin", "with_registry_rules"]


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


# Erasure --------------------------------------------------------------------------------
# Registered last: registering builds the admin site, whose module imports the mixin above.


class ErasureCertificateAdmin(admin.ModelAdmin):
    """Certificates, read-only for everyone; the erasure page (preview, confirm) hangs off it
    as ``admin:compliance_subject_erasure`` with the subject's key."""

    list_display = ["__str__", "created_at", "subject_model", "short_ref", "actor_label", "summary"]
    list_filter = ["subject_model", "created_at"]
    search_fields = ["subject_ref", "plan_hash", "actor_label"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "subject_model",
        "subject_ref",
        "actor_label",
        "reason",
        "plan_hash",
        "ledger_entry",
        "counts_table",
    ]
    readonly_fields = fields

    @admin.display(description="subject reference")
    def short_ref(self, obj):
        return f"{obj.subject_ref[:12]}…"

    @admin.display(description="rows")
    def summary(self, obj):
        t = obj.totals
        return (
            f"{t['anonymised']} anonymised, {t['deleted']} deleted, "
            f"{t['history_scrubbed']} history scrubbed, {t['kept']} kept"
        )

    @admin.display(description="counts per model")
    def counts_table(self, obj):
        rows = format_html_join(
            "",
            "<tr>" + "<td>{}</td>" * 8 + "</tr>",
            (
                (
                    label,
                    c.get("action", ""),
                    c.get("anonymised", 0),
                    c.get("deleted", 0),
                    c.get("history_scrubbed", 0),
                    c.get("admin_log_scrubbed", 0),
                    c.get("kept", 0),
                    "; ".join(c.get("grounds", [])),
                )
                for label, c in sorted(obj.counts.items())
            ),
        )
        return format_html(
            "<table><thead><tr><th>Model</th><th>Action</th><th>Anonymised</th>"
            "<th>Deleted</th><th>History rows scrubbed</th><th>Admin log entries scrubbed</th>"
            "<th>Kept</th><th>Why kept</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_erasure_permission(self, request) -> bool:
        return request.user.has_perm(ERASE_PERMISSION)

    def get_urls(self):
        return [
            path(
                "erasure/<str:subject_pk>/",
                self.admin_site.admin_view(self.erasure_view),
                name="compliance_subject_erasure",
            ),
            *super().get_urls(),
        ]

    def erasure_view(self, request, subject_pk):
        """Preview a subject's erasure; on POST (reason given), run it."""
        if not self.has_erasure_permission(request):
            raise PermissionDenied
        model = registry.subject_model()
        try:
            subject = model._base_manager.get(pk=subject_pk)
        except (model.DoesNotExist, ValueError, ValidationError):
            raise Http404(f"No {model._meta.verbose_name} with the key {subject_pk!r}.") from None
        error, reason = "", ""
        if request.method == "POST":
            reason = request.POST.get("reason", "")
            try:
                result = subject_erase(
                    subject=subject,
                    actor=request.user,
                    reason=reason,
                    plan_hash=request.POST.get("plan_hash") or "(none)",
                )
            except ComplianceRefused as exc:
                error = str(exc)
            else:
                if result.certificate is None:
                    self.message_user(request, result.message, messages.INFO)
                    return redirect(request.path)
                self.message_user(request, result.message, messages.SUCCESS)
                return redirect("admin:compliance_erasurecertificate_change", result.certificate.pk)
        plan = erasure_plan(subject)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Erase {model._meta.verbose_name} {subject.pk}",
            "opts": self.model._meta,
            "subject": subject,
            "subject_opts": model._meta,
            "plan": plan,
            "error": error,
            "reason": reason,
            "nothing_left": NOTHING_LEFT,
            "certificates": ErasureCertificate.objects.filter(subject_ref=plan.subject_ref),
        }
        return TemplateResponse(request, "admin/compliance/erasure_preview.html", context)


admin.site.register(ErasureCertificate, ErasureCertificateAdmin)
