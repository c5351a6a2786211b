"""Admin of the versions app: the read-only ledger, and history pages with context columns."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from simple_history.admin import SimpleHistoryAdmin

from .models import LedgerEntry

__all__ = ["TrackedHistoryAdmin", "LedgerEntryAdmin"]


class TrackedHistoryAdmin(SimpleHistoryAdmin):
    """SimpleHistoryAdmin whose history page shows who, from where and in which request."""

    history_list_display = [
        "history_channel",
        "history_ip",
        "history_user_agent",
        "history_request_id",
        "history_task_id",
    ]

    object_history_list_template = "versions/object_history_list.html"

    def history_view(self, request, object_id, extra_context=None):
        history_opts = self.model.history.model._meta
        labels = [
            capfirst(history_opts.get_field(name).verbose_name)
            for name in self.get_history_list_display(request)
        ]
        context = {"history_list_labels": labels, **(extra_context or {})}
        return super().history_view(request, object_id, context)

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True):
        super().set_history_delta_changes(request, historical_records, foreign_keys_are_objs)
        # "Changed by" for the whole page in one query: `history_user` looks up one per row.
        records = list(historical_records)
        user_ids = {r.history_user_id for r in records if r.history_user_id is not None}
        users = get_user_model()._default_manager.in_bulk(user_ids)
        for record in records:
            record.changed_by = users.get(record.history_user_id)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # simple-history's revert saves without a transaction, a permission of its own or a
        # ledger entry, and accepts a POST even where it renders the form read-only. Versions
        # are shown here; restoring one is the restore service's job.
        if request.method == "POST":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


def _readable(value) -> str:
    """A counts or details value as a person reads it: "rows: 3, files: 1"."""
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_readable(item)}" for key, item in value.items()) or "—"
    if isinstance(value, list):
        return "[" + ", ".join(_readable(item) for item in value) + "]"
    return "—" if value is None else str(value)


def _breakable(text: str):
    """Escaped text that may wrap after "." and ":" (model labels, "shop.Customer:17")."""
    return mark_safe(escape(text).replace(".", ".<wbr>").replace(":", ":<wbr>"))


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Everyone with access may read the ledger; nobody may change it."""

    # Six narrow columns so that the list fits a 1280-pixel window beside the filters.
    list_display = ["id", "created", "action", "actor_and_channel", "target_text", "counts_text"]
    list_filter = ["action", "created_at"]
    search_fields = ["actor_label", "target", "request_id", "task_id"]
    fieldsets = [
        (None, {"fields": ["created_at", "action", "actor_label", "channel", "reason"]}),
        ("What", {"fields": ["target", "counts_text", "details_text"]}),
        ("Where from", {"fields": ["request_id", "task_id"]}),
        ("Chain", {"fields": ["key_id", "prev_hash", "hash"]}),
    ]
    readonly_fields = [
        *(f.name for f in LedgerEntry._meta.fields if f.name not in ("counts", "details")),
        "counts_text",
        "details_text",
    ]
    show_full_result_count = False
    list_per_page = 50

    @admin.display(description="Created at", ordering="created_at")
    def created(self, obj):
        return date_format(timezone.localtime(obj.created_at), "j M Y, H:i")

    @admin.display(description="Actor", ordering="actor_label")
    def actor_and_channel(self, obj):
        if not obj.channel:
            return obj.actor_label
        return format_html("{}<br><small>via {}</small>", obj.actor_label, obj.channel)

    @admin.display(description="Target", ordering="target")
    def target_text(self, obj):
        return _breakable(obj.target)

    @admin.display(description="Counts")
    def counts_text(self, obj):
        return _breakable(_readable(obj.counts))

    @admin.display(description="Details")
    def details_text(self, obj):
        return _breakable(_readable(obj.details))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def history_view(self, request, object_id, extra_context=None):
        # An entry never changes, so it has no history: its own page says everything.
        return redirect("admin:versions_ledgerentry_change", object_id)
