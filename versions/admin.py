"""Admin of the versions app: the read-only ledger and history pages with context columns."""

from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_field, quote, unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import re_path, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import escape, format_html
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import ModelChange, ModelDelta
from simple_history.template_utils import HistoricalRecordContextHelper
from simple_history.utils import get_history_manager_for_model, get_history_model_for_model

from .models import LedgerCheckpoint, LedgerEntry
from .rendering import text
from .selectors import (
    RestoreRefused,
    deleted_versions,
    recover_preview,
    restore_preview,
    snapshot_instance,
    version_as_of,
)
from .services import record_recover, version_restore

DELETED_PER_PAGE = 50
#: Versions per page of a record's history (the stock changelist shows 100 rows).
HISTORY_PER_PAGE = 50

__all__ = [
    "LedgerEntryAdmin",
    "ReadOnlyAdminMixin",
    "TrackedHistoryAdmin",
]


class TrackedHistoryAdmin(SimpleHistoryAdmin):
    """SimpleHistoryAdmin whose history pages show who, when, from where and why.

    The history list has a column per context field; a version opens read-only, with its
    context. Versions are read here, never reverted: restoring one is the restore
    service's job (simple-history's revert saves without a transaction, a permission of its
    own or a ledger entry).
    """

    history_list_display = [
        "history_channel",
        "history_ip",
        "history_user_agent",
        "history_request_id",
        "history_task_id",
    ]

    object_history_template = "versions/object_history.html"
    object_history_list_template = "versions/object_history_list.html"
    object_history_form_template = "versions/object_history_version.html"

    def history_view(self, request, object_id, extra_context=None):
        """A record's versions, newest first, with who, from where, why and what changed.

        Keyset pages (``?before=<date>|<version id>``) of HISTORY_PER_PAGE versions: no
        count of the record's history. The version after the last one shown is read with
        the page, so every row has its changes; foreign keys in them are looked up once for
        the whole page, and the rows are formatted here rather than cell by cell in the
        template.
        """
        request.current_app = self.admin_site.name
        pk = _object_pk_or_404(self.model, object_id)
        if request.GET.get("as_of"):
            return self._as_of(request, pk, request.GET["as_of"])
        history = get_history_model_for_model(self.model)
        records = history._base_manager.filter(**{self.model._meta.pk.attname: pk})
        obj = self.get_queryset(request).filter(pk=pk).first()
        if obj is None:
            latest = records.order_by("-history_date", "-pk").first()
            if latest is None:
                raise Http404(f"No {self.model._meta.verbose_name} with the id {object_id!r}.")
            obj = latest.instance
        if not self.has_view_history_or_change_history_permission(request, obj):
            raise PermissionDenied
        before = _history_cursor(request.GET.get("before", ""))
        if before is not None:
            records = records.filter(
                Q(history_date__lt=before[0]) | Q(history_date=before[0], pk__lt=before[1])
            )
        page = list(records.order_by("-history_date", "-pk")[: HISTORY_PER_PAGE + 1])
        shown = page[:HISTORY_PER_PAGE]
        columns = self.get_history_list_display(request)
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": self.history_view_title(request, obj),
            "module_name": capfirst(opts.verbose_name_plural),
            "object": obj,
            "opts": opts,
            "app_label": opts.app_label,
            "history_list_labels": [
                capfirst(history._meta.get_field(name).verbose_name)
                if name in {f.name for f in history._meta.fields}
                else capfirst(name.replace("_", " "))
                for name in columns
            ],
            "history_rows": self._history_rows(request, page, columns),
            "first_url": "?" if before is not None else None,
            "next_url": (
                f"?{urlencode({'before': _history_cursor_of(shown[-1])})}"
                if len(page) > HISTORY_PER_PAGE
                else None
            ),
            **(extra_context or {}),
        }
        return self.render_history_view(request, self.object_history_template, context)

    def _history_rows(self, request, page, columns):
        """The HTML rows of the versions of `page` but the extra last one (read only to give
        the last row its changes). Built here, escaped value by value: a template would
        resolve some twenty variables per row."""
        if not page:
            return ""
        opts = self.model._meta
        users = get_user_model()._default_manager.in_bulk(
            {r.history_user_id for r in page if r.history_user_id is not None}
        )
        deltas = _page_deltas(self.model, page)
        shown_columns = [(name, getattr(self, name, None)) for name in columns]
        # A version's page is simple-history's "<object>/history/<version>/".
        versions_url = self._page_url("history", quote(getattr(page[0], opts.pk.attname)))
        actions = {key: str(label) for key, label in type(page[0]).history_type.field.choices}
        rows = []
        for record, delta in zip(page[:HISTORY_PER_PAGE], deltas, strict=False):
            user = users.get(record.history_user_id)
            if user is not None:
                who = text(user)
            elif record.history_user_id is not None:
                who = f"user #{record.history_user_id} (deleted)"
            else:
                who = ""
            cells = []
            for name, method in shown_columns:
                value = method(record) if callable(method) else getattr(record, name, None)
                value = "" if value is None else text(value)
                cells.append(
                    f'<td class="history-context column-{name}"><span title="{value}">{value}'
                    "</span></td>"
                )
            reason = record.history_change_reason or ""
            if len(reason) > 200:
                reason = f'<span title="{text(reason)}">{text(reason[:199])}…</span>'
            else:
                reason = text(reason)
            changes = "".join(
                f"<li><strong>{text(c['field'])}:</strong> {text(c['old'])}&nbsp;&rarr;&nbsp;"
                f"{text(c['new'])}</li>"
                for c in delta
            )
            rows.append(
                f'<tr><td class="history-date">{text(record.history_date)}</td>'
                f'<td><a href="{versions_url}{record.pk}/">{record.pk}</a></td>'
                f"<td>{text(actions.get(record.history_type, record.history_type))}</td>"
                f"<td>{who}</td>{''.join(cells)}"
                f'<td class="history-reason">{reason}</td>'
                f'<td class="history-changes">{f"<ul>{changes}</ul>" if changes else ""}</td></tr>'
            )
        return mark_safe("".join(rows))

    def _as_of(self, request, pk, value):
        """The version in force at a date and time: its page, or a message saying why none."""
        from django.utils.dateparse import parse_datetime

        opts = self.model._meta
        history_url = self._page_url("history", quote(pk))
        moment = parse_datetime(value)
        if moment is None:
            self.message_user(
                request, f"{value!r} is not a date and time (YYYY-MM-DD HH:MM).", messages.ERROR
            )
            return redirect(history_url)
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        version = version_as_of(self.model, pk, moment)
        if version is None:
            self.message_user(
                request,
                f"This {opts.verbose_name} did not exist at {value} (not yet, or deleted).",
                messages.WARNING,
            )
            return redirect(history_url)
        return redirect(self._page_url("simple_history", quote(pk), version.pk))

    def get_urls(self):
        opts = self.model._meta
        return [
            re_path(
                r"^([^/]+)/history/([^/]+)/restore/$",
                self.admin_site.admin_view(self.restore_view),
                name=f"{opts.app_label}_{opts.model_name}_restore",
            ),
            re_path(
                r"^deleted/$",
                self.admin_site.admin_view(self.deleted_view),
                name=f"{opts.app_label}_{opts.model_name}_deleted",
            ),
            re_path(
                r"^deleted/([^/]+)/recover/$",
                self.admin_site.admin_view(self.recover_view),
                name=f"{opts.app_label}_{opts.model_name}_recover",
            ),
            *super().get_urls(),
        ]

    def _page_url(self, name, *args) -> str:
        opts = self.model._meta
        return reverse(
            f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_{name}", args=args
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        if self.has_view_or_change_permission(request):
            extra_context["deleted_records_url"] = self._page_url("deleted")
        return super().changelist_view(request, extra_context)

    def deleted_view(self, request):
        """Records deleted for good, newest first, from their delete snapshots; keyset pages
        (``?before=<version id>``), no count of the whole table."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        versions = deleted_versions(self.model)
        before = request.GET.get("before", "")
        if before.isdigit():
            versions = versions.filter(pk__lt=int(before))
        page = list(versions[: DELETED_PER_PAGE + 1])
        more = len(page) > DELETED_PER_PAGE
        page = page[:DELETED_PER_PAGE]
        users = get_user_model()._default_manager.in_bulk(
            {v.history_user_id for v in page if v.history_user_id is not None}
        )
        can_recover = self.has_add_permission(request)
        rows = [
            (
                version,
                _label(snapshot_instance(self.model, version)),
                users.get(version.history_user_id),
                self._page_url("recover", version.pk) if can_recover else None,
            )
            for version in page
        ]
        opts = self.model._meta
        soft_deleted = None
        if getattr(self.model, "deleted_objects", None) is not None and request.user.has_perm(
            f"{opts.app_label}.view_deleted_{opts.model_name}"
        ):
            # Soft-deleted rows are restored from the list, with the rows their delete hid.
            soft_deleted = {
                "count": self.model.deleted_objects.count(),
                "url": f"{self._page_url('changelist')}?state=deleted",
            }
        context = {
            **self.admin_site.each_context(request),
            "title": f"Deleted {opts.verbose_name_plural}",
            "soft_deleted": soft_deleted,
            "opts": opts,
            "rows": rows,
            "next_url": f"?before={page[-1].pk}" if more else None,
            "changelist_url": self._page_url("changelist"),
        }
        return TemplateResponse(request, "versions/deleted_records.html", context)

    def recover_view(self, request, version_id):
        """Recover a deleted record: the preview, then, on POST with a reason, the service."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        try:
            preview = recover_preview(self.model, version_id)
        except RestoreRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return redirect(self._page_url("deleted"))
        reason = request.POST.get("reason", "").strip()
        error = ""
        if request.method == "POST":
            if not reason:
                error = "Give a reason: it is kept with the record and in the ledger."
            else:
                try:
                    record_recover(
                        model=self.model, history_id=preview.version.pk, actor=request.user,
                        reason=reason,
                    )  # fmt: skip
                except RestoreRefused as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    return redirect(request.path)
                self.message_user(
                    request,
                    f"Recovered {_label(preview.candidate)} and {len(preview.related)} row(s) "
                    "deleted with it, as new versions and in the ledger.",
                    messages.SUCCESS,
                )
                return redirect(self._page_url("change", quote(preview.candidate.pk)))
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": f"Recover {opts.verbose_name} #{preview.candidate.pk}",
            "opts": opts,
            "preview": preview,
            "label": _label(preview.candidate),
            "field_rows": _field_rows(self.model, preview.version),
            "related": [
                (m._meta.verbose_name, _label(snapshot_instance(m, v))) for m, v in preview.related
            ],  # fmt: skip
            "reason": reason,
            "error": error,
            "deleted_url": self._page_url("deleted"),
            "changelist_url": self._page_url("changelist"),
        }
        return TemplateResponse(request, "versions/recover_preview.html", context)

    def restore_view(self, request, object_id, version_id):
        """Restore a version: a preview (changes, missing targets, clashes, erased data),
        then, on POST with a reason, `version_restore` and back to the record."""
        request.current_app = self.admin_site.name
        pk = _object_pk_or_404(self.model, object_id)
        record = self.model._base_manager.filter(pk=pk).first()
        if record is None:
            raise Http404(f"No {self.model._meta.verbose_name} with the id {object_id!r}.")
        if not self.has_change_permission(request, record):
            raise PermissionDenied
        opts = self.model._meta
        prefix = f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}"
        change_url = reverse(f"{prefix}_change", args=(quote(record.pk),))
        try:
            preview = restore_preview(record, version_id)
        except RestoreRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return redirect(reverse(f"{prefix}_history", args=(quote(record.pk),)))
        reason = request.POST.get("reason", "").strip()
        error = ""
        if request.method == "POST":
            if not reason:
                error = "Give a reason: it is kept with the new version and in the ledger."
            else:
                try:
                    version_restore(
                        record=record,
                        history_id=preview.version.pk,
                        actor=request.user,
                        reason=reason,
                        expected_latest=request.POST.get("expected_latest"),
                    )
                except RestoreRefused as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    return redirect(request.path)
                self.message_user(
                    request,
                    f"Restored version #{preview.version.pk}: {len(preview.changes)} field(s) "
                    "changed, recorded as a new version and in the ledger.",
                    messages.SUCCESS,
                )
                return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Restore {record} to version #{preview.version.pk}",
            "opts": opts,
            "original": record,
            "preview": preview,
            "reason": reason,
            "error": error,
            "change_url": change_url,
            "changelist_url": reverse(f"{prefix}_changelist"),
            "history_url": reverse(f"{prefix}_history", args=(quote(record.pk),)),
        }
        return TemplateResponse(request, "versions/restore_preview.html", context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """One version, read-only: the record's values and the context it was made in."""
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied  # a version is shown, never saved back from here
        request.current_app = self.admin_site.name
        record = _version_or_404(self.model, object_id, version_id)
        obj = record.instance
        if not self.has_view_history_or_change_history_permission(request, obj):
            raise PermissionDenied
        opts = self.model._meta
        prefix = f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}"
        user_id = record.history_user_id
        user = (
            None
            if user_id is None
            else get_user_model()._default_manager.filter(pk=user_id).first()
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Version of %(object)s") % {"object": obj},
            "opts": opts,
            "app_label": opts.app_label,
            "original": obj,
            "record": record,
            "changed_by": user,
            "context_rows": _context_rows(record),
            "field_rows": _field_rows(self.model, record),
            "changelist_url": reverse(f"{prefix}_changelist"),
            "change_url": reverse(f"{prefix}_change", args=(quote(obj.pk),)),
            "history_url": reverse(f"{prefix}_history", args=(quote(obj.pk),)),
            "restore_url": (
                reverse(f"{prefix}_restore", args=(quote(obj.pk), record.pk))
                if record.history_type != "-" and self.has_change_permission(request, obj)
                else None
            ),
            **(extra_context or {}),
        }
        return self.render_history_view(request, self.object_history_form_template, context)


class ReadOnlyAdminMixin:
    """Nobody adds, changes or deletes these rows in the admin: a service writes them (the
    ledger, the purge run log, consent events, erasure certificates). Viewing follows the
    view permission as usual."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _history_cursor(value: str):
    """(date, version id) from a ``before`` cursor; None when there is none or it is garbled
    (the first page)."""
    from django.utils.dateparse import parse_datetime

    moment, _sep, history_id = value.rpartition("|")
    try:
        moment = parse_datetime(moment)
    except ValueError:
        return None
    if moment is None or not history_id.isdigit():
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment, int(history_id)


def _history_cursor_of(record) -> str:
    return f"{record.history_date.isoformat()}|{record.pk}"


def _page_deltas(model, page) -> list[list[dict]]:
    """What each version of `page` (newest first) changed from the next one in the list, as
    simple-history's history page shows it (field label, old, new; editable tracked fields,
    by name); the last version of the list gets none. Foreign keys show their target, read
    once for the whole page."""
    if not page:
        return []
    fields = sorted(
        (f for f in type(page[0]).tracked_fields if f.editable and not f.primary_key),
        key=lambda f: f.name,
    )
    pairs = []
    wanted: dict = {}
    for current, previous in zip(page, page[1:], strict=False):
        changed = [
            (f, getattr(previous, f.attname), getattr(current, f.attname))
            for f in fields
            if getattr(previous, f.attname) != getattr(current, f.attname)
        ]
        for field, old, new in changed:
            if field.is_relation:
                wanted.setdefault(field.related_model, set()).update(
                    v for v in (old, new) if v is not None
                )
        pairs.append((current, previous, changed))
    targets = {m: m._base_manager.in_bulk(ids) for m, ids in wanted.items()}

    def shown(field, value):
        if value is None or not field.is_relation:
            return value
        target = targets[field.related_model].get(value)
        return f"#{value} (deleted)" if target is None else target

    deltas = []
    for current, previous, changed in pairs:
        changes = [ModelChange(f.name, shown(f, old), shown(f, new)) for f, old, new in changed]
        delta = ModelDelta(changes, [c.field for c in changes], previous, current)
        helper = HistoricalRecordContextHelper(model, current)
        deltas.append(helper.context_for_delta_changes(delta))
    return [*deltas, []]


def _object_pk_or_404(model, object_id):
    """The primary key in a URL as the model's type; an id that cannot be one is a 404."""
    try:
        return model._meta.pk.to_python(unquote(object_id))
    except ValidationError as exc:
        raise Http404(f"No {model._meta.verbose_name} with the id {object_id!r}.") from exc


def _version_or_404(model, object_id, version_id):
    """The history row ``version_id`` of the record ``object_id``, whatever the history
    manager of ``model`` is called; ids that do not parse, or do not match, are a 404."""
    history_model = get_history_model_for_model(model)
    pk = _object_pk_or_404(model, object_id)
    try:
        version = history_model._meta.pk.to_python(version_id)
    except ValidationError as exc:
        raise Http404(f"No version with the id {version_id!r}.") from exc
    return get_object_or_404(
        get_history_manager_for_model(model), **{model._meta.pk.attname: pk, "pk": version}
    )


def _context_rows(record):
    """(label, value) of the circumstances a version was made in, in reading order."""
    stored = {f.name: f for f in record._meta.concrete_fields}
    names = ["history_channel", "history_ip", "history_user_agent"]
    names += ["history_request_id", "history_task_id"]
    rows = [(capfirst(stored[n].verbose_name), getattr(record, n)) for n in names if n in stored]
    return [*rows, (_("Reason"), record.history_change_reason)]


def _field_rows(model, record):
    """(label, display value) of each tracked field the version holds."""
    stored = {f.attname for f in record._meta.concrete_fields}
    rows = []
    for field in model._meta.concrete_fields:
        if field.attname not in stored:
            continue  # excluded from history (credentials)
        if field.is_relation:
            target_id = getattr(record, field.attname)
            try:
                value = getattr(record, field.name)
            except ObjectDoesNotExist:
                value = f"#{target_id} (deleted)"
            value = "-" if target_id is None else value
        else:
            value = display_for_field(getattr(record, field.attname), field, "-")
        rows.append((capfirst(field.verbose_name), value))
    return rows


def _label(instance) -> str:
    """A record's name; its id when the name needs a row that is gone."""
    try:
        return str(instance)
    except ObjectDoesNotExist:
        return f"{instance._meta.verbose_name} #{instance.pk}"


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
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Everyone with access may read the ledger; nobody may change it."""

    # Six narrow columns so that the list fits a 1280-pixel window beside the filters.
    list_display = ["id", "created", "action", "actor_and_channel", "target_text", "counts_text"]
    list_filter = ["action", "created_at"]
    search_fields = ["actor_label", "target", "request_id", "task_id"]
    fieldsets = [
        (None, {"fields": ["created_at", "action", "actor_label", "channel", "reason"]}),
        ("What", {"fields": ["target", "counts_text", "details_text"]}),
        ("Where from", {"fields": ["request_id", "task_id"]}),
        ("Chain", {"fields": ["seq", "key_id", "prev_hash", "hash"]}),
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

    def history_view(self, request, object_id, extra_context=None):
        # An entry never changes, so it has no history: its own page says everything.
        return redirect("admin:versions_ledgerentry_change", object_id)


@admin.register(LedgerCheckpoint)
class LedgerCheckpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ledger's signed heads: one per append and per passed verification. Auditors see
    when the ledger was last verified and which head it had; nobody changes them."""

    # Five narrow columns, so the list fits a 1280-pixel window beside the filters; the key id,
    # signature and channel are on each checkpoint's page.
    list_display = ["id", "created", "kind", "entry_id", "short_head", "actor_label"]
    list_filter = ["kind", "created_at"]
    fields = [
        "created_at", "kind", "entry_id", "head", "key_id", "mac", "actor_label", "channel",
        "reason",
    ]  # fmt: skip
    readonly_fields = fields
    show_full_result_count = False
    list_per_page = 50

    @admin.display(description="Created at", ordering="created_at")
    def created(self, obj):
        return date_format(timezone.localtime(obj.created_at), "j M Y, H:i")

    @admin.display(description="Head")
    def short_head(self, obj):
        return f"{obj.head[:12]}…"

    def history_view(self, request, object_id, extra_context=None):
        return redirect("admin:versions_ledgercheckpoint_change", object_id)
