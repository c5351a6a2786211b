"""The backup catalogue in the admin: every backup with its last verification and drill, and
whether a hold keeps it; officers start backups and queue verifications and drills."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, OuterRef, Subquery
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.urls import re_path
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from retention.selectors import held_q
from versions.admin import ReadOnlyAdminMixin, _breakable, _readable

from ..backups import BackupError
from ..models import Backup, BackupCheck
from ..tasks import backup_create_task, backup_verify_task

__all__ = ["BackupAdmin", "BackupOnDiskFilter"]


def _last_check(kind=None):
    """The newest check of the outer backup (of `kind`, or any), as a subquery."""
    checks = BackupCheck.objects.filter(backup=OuterRef("pk")).order_by("-checked_at", "-id")
    return checks.filter(kind=kind) if kind else checks


class BackupOnDiskFilter(admin.SimpleListFilter):
    """Backups whose file is still on disk, or was deleted by cleanup (the row stays)."""

    title = "file"
    parameter_name = "file"

    def lookups(self, request, model_admin):
        return [("on_disk", "On disk"), ("deleted", "Deleted by cleanup")]

    def queryset(self, request, queryset):
        if self.value() == "on_disk":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(Backup)
class BackupAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The backup catalogue: every backup with its last verification and drill, and whether
    a hold keeps it. Officers start backups and queue verifications and drills; nobody
    edits a row."""

    change_list_template = "admin/operations/backup/change_list.html"
    list_display = ["file", "tier", "size_text", "created", "checksum", "last_drill", "held"]
    list_filter = ["tier", BackupOnDiskFilter, "vendor"]
    search_fields = ["file", "sha256"]
    actions = ["verify_selected", "drill_selected"]
    show_full_result_count = False
    fields = [
        "file",
        "tier",
        "vendor",
        "created_at",
        "created_by",
        "size_text",
        "sha256",
        "deleted_at",
        "deleted_by",
        "checks_text",
        "tables_text",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                check_ok=Subquery(_last_check().values("ok")[:1]),
                check_at=Subquery(_last_check().values("checked_at")[:1]),
                drill_ok=Subquery(_last_check(BackupCheck.Kind.DRILL).values("ok")[:1]),
                drill_at=Subquery(_last_check(BackupCheck.Kind.DRILL).values("checked_at")[:1]),
                is_held=ExpressionWrapper(held_q(Backup, dependants=0), BooleanField()),
            )
        )

    @admin.display(description="Size", ordering="size")
    def size_text(self, obj):
        return filesizeformat(obj.size)

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj):
        text = date_format(timezone.localtime(obj.created_at), "j M Y, H:i")
        if obj.deleted_at is None:
            return text
        return format_html("{}<br><small>file deleted by cleanup</small>", text)

    @admin.display(description="Checksum")
    def checksum(self, obj):
        if obj.check_at is None:
            return "never verified"
        return _check_text(obj.check_ok, obj.check_at)

    @admin.display(description="Last drill")
    def last_drill(self, obj):
        if obj.drill_at is None:
            return "never"
        return _check_text(obj.drill_ok, obj.drill_at)

    @admin.display(description="Held", boolean=True)
    def held(self, obj):
        return obj.is_held

    @admin.display(description="Checks")
    def checks_text(self, obj):
        rows = [
            format_html(
                "<li>{} {}, {} by {}: {}</li>",
                check.get_kind_display(),
                "passed" if check.ok else "FAILED",
                date_format(timezone.localtime(check.checked_at), "j M Y, H:i"),
                check.actor_label,
                check.detail,
            )
            for check in obj.checks.all()[:20]
        ]
        return format_html("<ul>{}</ul>", mark_safe("".join(rows))) if rows else "none yet"

    @admin.display(description="Rows per table (manifest)")
    def tables_text(self, obj):
        return _breakable(_readable(obj.manifest.get("tables", {})))

    def has_run_backup_permission(self, request):
        return request.user.has_perm("operations.run_backup_backup")

    def get_urls(self):
        opts = self.model._meta
        return [
            re_path(
                r"^start/$",
                self.admin_site.admin_view(self.start_view),
                name=f"{opts.app_label}_{opts.model_name}_start",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "can_run_backup": self.has_run_backup_permission(request),
            "tiers": Backup.Tier.choices,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def start_view(self, request):
        """POST: queue a backup of the chosen tier, then back to the list with a message."""
        if request.method != "POST" or not self.has_run_backup_permission(request):
            raise PermissionDenied
        tier = request.POST.get("tier") or Backup.Tier.DAILY
        if tier not in Backup.Tier.values:
            self.message_user(request, f"Unknown tier {tier!r}.", messages.ERROR)
        else:
            self._queue(
                request,
                lambda: backup_create_task.delay(tier),
                f"Started a {tier} backup: it appears in this list once written (a failure "
                "is logged by the worker).",
            )
        return redirect("admin:operations_backup_changelist")

    def _queue(self, request, send, done: str) -> None:
        """Queue after commit; without a broker the task runs here, and its error is shown."""
        try:
            transaction.on_commit(send)
        except (BackupError, PermissionDenied) as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)

    @admin.action(permissions=["run_backup"], description="Verify selected backups (checksum)")
    def verify_selected(self, request, queryset):
        self._queue_checks(request, queryset, drill=False)

    @admin.action(
        permissions=["run_backup"], description="Drill selected backups (restore and compare)"
    )
    def drill_selected(self, request, queryset):
        self._queue_checks(request, queryset, drill=True)

    def _queue_checks(self, request, queryset, *, drill):
        gone = queryset.filter(deleted_at__isnull=False).count()
        ids = list(queryset.filter(deleted_at__isnull=True).values_list("pk", flat=True))
        if gone:
            self.message_user(
                request,
                f"{gone} selected backup(s) deleted by cleanup: nothing to check.",
                messages.WARNING,
            )
        if ids:
            what = "drill(s)" if drill else "verification(s)"
            self._queue(
                request,
                lambda: [backup_verify_task.delay(pk, drill) for pk in ids],
                f"Queued {len(ids)} {what}: the outcome shows in the Checksum and Last drill "
                "columns.",
            )


def _check_text(ok, moment):
    when = date_format(timezone.localtime(moment), "j M Y, H:i")
    if ok:
        return f"ok, {when}"
    return format_html("<strong>FAILED</strong>, {}", when)
