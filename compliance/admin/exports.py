"""Admin of subject exports: the read-only export log, the page that runs an export and
the download page (a GET confirms, the POST streams the ZIP and writes the ledger entry)."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, Case, Q, Value, When
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import capfirst

from .. import config
from ..models import SubjectExport
from ..registry import registry
from ..selectors import subject_get, subject_gone
from ..services import (
    DOWNLOAD_PERMISSION,
    ComplianceRefused,
    export_download,
    export_may_download,
    subject_export_queue,
)
from .common import _answered_request, _local, _request_reason


def _short(moment) -> str:
    """A compact local date and time on one line: 3 Oct 2024, 14:05."""
    return format_html('<span class="nowrap">{}</span>', _local(moment)) if moment else "-"


@admin.register(SubjectExport)
class SubjectExportAdmin(admin.ModelAdmin):
    """The export log: read-only for everyone. Officers run an export from the page
    ``admin:compliance_subject_export`` (the subject's pk) and download finished ones
    (``admin:compliance_subjectexport_download``); each download is a ledger entry."""

    list_display = ["__str__", "status", "created", "rows", "expires", "download_link"]
    list_filter = ["status"]
    list_select_related = ["requested_by"]
    search_fields = ["=subject_key", "=id"]
    readonly_fields = ["subject", "subject_key", "requested_by", "answers", "reason", "request",
                       "created_at", "started_at", "finished_at", "status", "error", "filename",
                       "size", "sha256", "counts", "expires_at", "released_at", "released_by",
                       "downloads"]  # fmt: skip
    show_full_result_count = False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("run/<str:subject_pk>/", view(self.run_view), name="compliance_subject_export"),
            path(
                "download/<str:key>/",
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

    def get_queryset(self, request):
        """Each export knows whether the viewing officer may download it (they ran it or it
        names them): the list and the page show the link to that officer only."""
        mine = Q(requested_by_id=request.user.pk) | Q(recipient_id=request.user.pk)
        return (
            super()
            .get_queryset(request)
            .annotate(
                _downloadable=Case(
                    When(mine, then=Value(True)), default=Value(False), output_field=BooleanField()
                )
            )
        )

    @admin.display(description="download")
    def download_link(self, obj):
        """A link to the download page, for the officer the export is for: the page asks to
        confirm and downloads by POST."""
        if obj.status != SubjectExport.Status.DONE or not obj.filename or not obj.download_key:
            return ""
        if not getattr(obj, "_downloadable", False):
            return ""
        url = reverse("admin:compliance_subjectexport_download", args=[obj.download_key])
        return format_html('<a href="{}" class="nowrap">Download ZIP</a>', url)

    def run_view(self, request, subject_pk):
        """Confirm, then queue an export of one subject (a Celery task writes the ZIP)."""
        if not self.has_run_permission(request):
            raise PermissionDenied
        subject_model = registry.subject_model()
        subject = subject_get(subject_pk)  # a subject whose row is gone: its history rows
        if subject is None:
            raise Http404(f"No {subject_model._meta.verbose_name} with id {subject_pk}.")
        try:
            answered = _answered_request(request)
        except ComplianceRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            if request.method == "POST":
                return HttpResponseRedirect(request.path)
            answered = None
        recipients = (
            get_user_model()
            .objects.with_perm(DOWNLOAD_PERMISSION, include_superusers=False)
            .exclude(pk=request.user.pk)
            .order_by("username")
        )
        if request.method == "POST":
            named = request.POST.get("recipient", "")
            recipient = recipients.filter(pk=named).first() if named.isdigit() else None
            if named and recipient is None:
                self.message_user(
                    request,
                    "Choose the officer who may download the export from the list.",
                    messages.ERROR,
                )
                return HttpResponseRedirect(request.path)
            try:
                export = subject_export_queue(
                    subject=subject,
                    actor=request.user,
                    reason=request.POST.get("reason", "").strip(),
                    request=answered,
                    recipient=recipient,
                )
            except ComplianceRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect(request.path)
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
            "gone": subject_gone(subject),
            "subject_opts": subject_model._meta,
            "opts": self.model._meta,
            "kinds": [
                f"{capfirst(e.model._meta.verbose_name_plural)} ({e.label})"
                for e in registry.entries()
                if e.exported
            ],
            "expiry_days": config.export_expiry_days(),
            "reason": _request_reason(answered),
            "answered": answered,
            "recipients": recipients,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/compliance/subject_export.html", context)

    def download_view(self, request, key):
        """The download page of one export, addressed by its unguessable key: a GET shows
        what will be downloaded and changes nothing; the POST streams the ZIP and writes the
        ledger entry. Only the officer who ran the export, or the one it names, gets either."""
        if not self.has_download_permission(request):
            raise PermissionDenied
        export = SubjectExport.objects.filter(download_key=key).first() if key else None
        if export is None:
            raise Http404("No such export.")
        if not export_may_download(export, request.user):
            raise PermissionDenied
        if request.method == "POST":
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
                filename=f"subject-{export.subject_key}-export-{export.pk}.zip",
                content_type="application/zip",
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Download {export}",
            "opts": self.model._meta,
            "export": export,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/compliance/export_download.html", context)
