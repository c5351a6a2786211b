"""Erasure replay matches in the admin: subjects a replay after a restore found by an email
alone, which an officer with the erasure permission confirms (the subject is erased) or
dismisses on a confirmation page."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import re_path, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html

from compliance.selectors import erasure_plan, subject_get
from compliance.services import ERASE_PERMISSION, ComplianceRefused
from versions.admin import ReadOnlyAdminMixin

from ..backups import BackupError
from ..models import ErasureReplayMatch
from ..restore import replay_match_confirm, replay_match_dismiss

__all__ = ["ErasureReplayMatchAdmin"]


@admin.register(ErasureReplayMatch)
class ErasureReplayMatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Subjects an erasure replay matched by an email alone. An officer with the erasure
    permission confirms one (the subject is erased) or dismisses it, on a confirmation page;
    nobody edits a row."""

    list_display = ["id", "created", "status", "subject", "field", "erased_person", "decided"]
    list_filter = ["status"]
    fields = [
        "created_at", "replay", "status", "subject", "field", "erased_person", "decided",
        "decision_reason", "erasure",
    ]  # fmt: skip
    readonly_fields = fields
    show_full_result_count = False
    list_per_page = 50

    @admin.display(description="Listed", ordering="created_at")
    def created(self, obj):
        return date_format(timezone.localtime(obj.created_at), "j M Y, H:i")

    @admin.display(description="Subject", ordering="subject_key")
    def subject(self, obj):
        if obj.status != ErasureReplayMatch.Status.PENDING:
            return obj.subject_key
        url = reverse("admin:operations_erasurereplaymatch_decide", args=[obj.pk])
        return format_html('{} (<a href="{}">confirm or dismiss</a>)', obj.subject_key, url)

    @admin.display(description="Erasure it matched")
    def erased_person(self, obj):
        return (
            f"{obj.log_entry.get_kind_display()} entry #{obj.log_entry_id} of erasure "
            f"certificate #{obj.log_entry.certificate_id}"
        )

    @admin.display(description="Decided")
    def decided(self, obj):
        if obj.decided_at is None:
            return "not yet"
        when = date_format(timezone.localtime(obj.decided_at), "j M Y, H:i")
        return f"{when} by {obj.decided_by}"

    def has_decide_permission(self, request) -> bool:
        return request.user.has_perm(ERASE_PERMISSION)

    def get_urls(self):
        return [
            re_path(
                r"^(?P<object_id>\d+)/decide/$",
                self.admin_site.admin_view(self.decide_view),
                name="operations_erasurereplaymatch_decide",
            ),
            *super().get_urls(),
        ]

    def decide_view(self, request, object_id):
        """The confirmation page: what matched, what erasing the subject would do; on POST
        with a reason, confirm (the erasure runs) or dismiss."""
        if not self.has_decide_permission(request):
            raise PermissionDenied
        match = get_object_or_404(
            ErasureReplayMatch.objects.select_related("log_entry"), pk=object_id
        )
        changelist = reverse("admin:operations_erasurereplaymatch_changelist")
        if match.status != ErasureReplayMatch.Status.PENDING:
            self.message_user(request, f"Match #{match.pk} is already decided.", messages.INFO)
            return redirect(changelist)
        subject = subject_get(match.subject_key)
        reason, error = request.POST.get("reason", "").strip(), ""
        if request.method == "POST":
            decision = request.POST.get("decision")
            try:
                if decision == "confirm":
                    result = replay_match_confirm(
                        match=match, actor=request.user, reason=reason,
                        plan_hash=request.POST.get("plan_hash") or "(none)",
                    )  # fmt: skip
                    done = f"Match #{match.pk} confirmed: {result.message}"
                elif decision == "dismiss":
                    replay_match_dismiss(match=match, actor=request.user, reason=reason)
                    done = f"Match #{match.pk} dismissed: subject {match.subject_key} is kept."
                else:
                    raise ComplianceRefused("Choose to confirm or to dismiss the match.")
            except (BackupError, ComplianceRefused) as exc:
                error = str(exc)
            else:
                self.message_user(request, done, messages.SUCCESS)
                return redirect(changelist)
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": f"Confirm or dismiss erasure replay match #{match.pk}",
            "opts": opts,
            "match": match,
            "subject": subject,
            "erased_person": self.erased_person(match),
            "plan": erasure_plan(subject) if subject is not None else None,
            "reason": reason,
            "error": error,
            "changelist_url": changelist,
        }
        return TemplateResponse(request, "admin/operations/erasurereplaymatch/decide.html", context)
