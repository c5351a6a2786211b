"""Admin of erasure: the read-only certificates, with the erasure page (preview, then run)
hanging off them."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join

from versions.admin import ReadOnlyAdminMixin

from ..models import ErasureCertificate
from ..registry import registry
from ..selectors import erasure_plan, subject_get, subject_gone
from ..services import ERASE_PERMISSION, NOTHING_LEFT, ComplianceRefused, subject_erase
from .common import _answered_request, _request_reason


class ErasureCertificateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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
        "answers",
        "reason",
        "request",
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
        subject = subject_get(subject_pk)  # a subject whose row is gone: its history rows
        if subject is None:
            raise Http404(f"No {model._meta.verbose_name} with the key {subject_pk!r}.")
        error = ""
        try:
            answered = _answered_request(request)
        except ComplianceRefused as exc:
            answered, error = None, str(exc)
        reason = _request_reason(answered)
        if request.method == "POST" and error:
            reason = request.POST.get("reason", "")
        elif request.method == "POST":
            reason = request.POST.get("reason", "")
            try:
                result = subject_erase(
                    subject=subject,
                    actor=request.user,
                    reason=reason,
                    plan_hash=request.POST.get("plan_hash") or "(none)",
                    request=answered,
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
            "gone": subject_gone(subject),
            "plan": plan,
            "error": error,
            "reason": reason,
            "answered": answered,
            "nothing_left": NOTHING_LEFT,
            "certificates": ErasureCertificate.objects.filter(subject_ref=plan.subject_ref),
        }
        return TemplateResponse(request, "admin/compliance/erasure_preview.html", context)


admin.site.register(ErasureCertificate, ErasureCertificateAdmin)
