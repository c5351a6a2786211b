"""Admin of the versions app: the read-only ledger, and history pages with context columns."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import LedgerEntry

__all__ = ["TrackedHistoryAdmin", "LedgerEntryAdmin"]


class TrackedHistoryAdmin(SimpleHistoryAdmin):
    """SimpleHistoryAdmin whose history page shows who, from where and in which request."""

    history_list_display = [
        "history_actor",
        "history_ip",
        "history_user_agent",
        "history_request_id",
        "history_task_id",
    ]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Everyone with access may read the ledger; nobody may change it."""

    list_display = ["id", "created_at", "action", "actor_label", "target", "counts"]
    list_filter = ["action", "created_at"]
    search_fields = ["actor_label", "target", "request_id", "task_id"]
    readonly_fields = [f.name for f in LedgerEntry._meta.fields]
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
