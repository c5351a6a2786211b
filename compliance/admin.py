"""What the registry asks of every model's admin (the admin site adds it to each
ModelAdmin), and the admin of data-subject exports.

The inventory page lives on the admin site (sites.py).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import capfirst

from retention.selectors import held_q
from retention.services import rows_hard_delete
from retention.softdelete import is_soft_delete_model

from . import config
from .models import SubjectExport
from .registry import registry
from .services import ComplianceRefused, export_download, subject_export_queue

__all__ = ["RegistryAdminMixin", "SubjectExportAdmin", "with_registry_rules"]


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


# Exports ---------------------------------------------------------------------------------


def _short(moment) -> str:
    """A compact local date and time on one line: 3 Oct 2024, 14:05."""
    if moment is None:
        return "-"
    return format_html(
        '<span class="nowrap">{}</span>', date_format(timezone.localtime(moment), "j M Y, H:i")
    )


@admin.register(SubjectExport)
class SubjectExportAdmin(admin.ModelAdmin):
    """The export log: read-only for everyone. Officers run an export from the page
    ``admin:compliance_subject_export`` (the subject's pk) and download finished ones
    (``admin:compliance_subjectexport_download``); each download is a ledger entry."""

    list_display = ["__str__", "status", "created", "rows", "expires", "download_link"]
    list_filter = ["status"]
    list_select_related = ["requested_by"]
    search_fields = ["=subject__pk", "=id"]
    readonly_fields = ["subject", "requested_by", "reason", "created_at", "started_at",
                       "finished_at", "status", "error", "filename", "size", "sha256", "counts",
                       "expires_at"]  # fmt: skip
    show_full_result_count = False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("run/<str:subject_pk>/", view(self.run_view), name="compliance_subject_export"),
            path(
                "<int:export_pk>/download/",
                view(self.download_view),
                name="compliance_subjectexport_download",
            ),
            *super().get_urls(),
        ]

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if not self.has_download_permission(request):
            columns.remove("download_link")
        return columns

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if self.has_download_permission(request):
            fields.append("download_link")
        return fields

    def has_add_permission(self, request):
        return False  # exports are run from a subject, not typed in

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm("compliance.add_subjectexport")

    def has_download_permission(self, request) -> bool:
        return request.user.has_perm("compliance.download_subjectexport")

    @admin.display(description="rows")
    def rows(self, obj):
        return obj.rows

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return _short(obj.created_at)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, obj):
        return _short(obj.expires_at)

    @admin.display(description="download")
    def download_link(self, obj):
        if obj.status != SubjectExport.Status.DONE or not obj.filename:
            return ""
        url = reverse("admin:compliance_subjectexport_download", args=[obj.pk])
        return format_html('<a href="{}" class="nowrap">Download ZIP</a>', url)

    def run_view(self, request, subject_pk):
        """Confirm, then queue an export of one subject (a Celery task writes the ZIP)."""
        if not self.has_run_permission(request):
            raise PermissionDenied
        subject_model = registry.subject_model()
        subject = subject_model._base_manager.filter(pk=subject_pk).first()
        if subject is None:
            raise Http404(f"No {subject_model._meta.verbose_name} with id {subject_pk}.")
        if request.method == "POST":
            export = subject_export_queue(
                subject=subject, actor=request.user, reason=request.POST.get("reason", "").strip()
            )
            self.message_user(
                request,
                f"Export #{export.pk} is queued: it appears here as done when its ZIP is ready "
                "to download.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:compliance_subjectexport_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Export the data of {subject}",
            "subject": subject,
            "subject_opts": subject_model._meta,
            "opts": self.model._meta,
            "kinds": [
                f"{capfirst(e.model._meta.verbose_name_plural)} ({e.label})"
                for e in registry.entries()
                if e.exported
            ],
            "expiry_days": config.export_expiry_days(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/compliance/subject_export.html", context)

    def download_view(self, request, export_pk):
        """Stream a finished export's ZIP to a permitted user; refused once it has expired."""
        if not self.has_download_permission(request):
            raise PermissionDenied
        export = get_object_or_404(SubjectExport, pk=export_pk)
        try:
            handle = export_download(export=export, actor=request.user)
        except ComplianceRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:compliance_subjectexport_change", args=[export.pk])
            )
        return FileResponse(
            handle,
            as_attachment=True,
            filename=f"subject-{export.subject_id}-export-{export.pk}.zip",
            content_type="application/zip",
        )
