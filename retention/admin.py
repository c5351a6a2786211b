"""Admin of retention: soft delete (an Active / Deleted / All filter, marked rows, "Restore"
and "Delete permanently" with confirmation pages like ``delete_selected``), retention
policies with purge preview and run, the purge run log, and legal holds."""

from contextlib import suppress
from functools import partial

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_ngettext
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst

from versions.admin import ReadOnlyAdminMixin, TrackedHistoryAdmin

from .holds import holdable_models
from .models import RESTRICTION_GROUNDS, LegalHold, PolicyAction, PurgeRun, RetentionPolicy
from .selectors import policy_targets
from .services import (
    PurgeFailed,
    RetentionRefused,
    hold_place,
    hold_release,
    policy_approve,
    policy_fingerprint,
    policy_purge,
    policy_save,
    rows_hard_delete,
    rows_restore,
    rows_soft_delete,
)
from .softdelete import cascade_dependants
from .tasks import purge_policy

__all__ = ["ConfirmActionMixin", "DeletedFilter", "SoftDeleteAdmin"]


def _can_view_deleted(request, model) -> bool:
    opts = model._meta
    return request.user.has_perm(f"{opts.app_label}.view_deleted_{opts.model_name}")


class DeletedFilter(admin.SimpleListFilter):
    """Active rows by default; deleted and all rows for those who may see deleted rows."""

    title = "state"
    parameter_name = "state"
    ACTIVE, DELETED, ALL = "active", "deleted", "all"

    def lookups(self, request, model_admin):
        return [(self.ACTIVE, "Active"), (self.DELETED, "Deleted"), (self.ALL, "All")]

    def has_output(self):
        return True

    def value(self):
        return super().value() or self.ACTIVE

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": self.value() == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        if self.value() == self.DELETED:
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == self.ALL:
            return queryset
        return queryset.filter(deleted_at__isnull=True)


class ConfirmActionMixin:
    """Actions in the pattern of ``delete_selected``: a confirmation page with a reason field,
    then, on POST, the service, a message and back to the list."""

    confirmation_template = "admin/retention/confirm_action.html"

    def confirm_action(
        self,
        request,
        queryset,
        *,
        action,
        title,
        question,
        run,
        reason_required=False,
        changes=None,
    ):
        """`run(queryset, reason)` calls the service and returns the message to show.
        `changes(objects)`, when given, lists for each object what confirming would change
        and the fingerprint posted back with it."""
        opts = self.model._meta
        names = opts.verbose_name_plural
        if not queryset.exists():
            self.message_user(request, f"None of the selected {names} applies.", messages.WARNING)
            return None
        reason = request.POST.get("reason", "").strip()
        error = ""
        if request.POST.get("post") == "yes":
            if reason_required and not reason:
                error = "Give a reason: it is recorded in the ledger and the history."
            else:
                try:
                    self.message_user(request, run(queryset, reason), messages.SUCCESS)
                except RetentionRefused as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}: are you sure?",
            "action_title": title,
            "question": question.format(names=names),
            "objects": list(queryset),
            "queryset": queryset,
            "opts": opts,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "reason": reason,
            "reason_required": reason_required,
            "error": error,
            "changes": changes(list(queryset)) if changes else None,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.confirmation_template, context)


def _described(result) -> str:
    """ "3 row(s): 1 customer, 2 documents." for a RowsResult."""
    detail = ", ".join(
        f"{n} {model_ngettext(apps.get_model(label), n)}" for label, n in result.per_model.items()
    )
    return f"{result.total} row(s): {detail}."


class SoftDeleteAdmin(ConfirmActionMixin, admin.ModelAdmin):
    """Mix into the ModelAdmin of a `SoftDeleteModel` (before the admin base class).

    Deleting in the admin hides rows (the delete permission); "Restore" needs change and
    view_deleted; "Delete permanently" needs hard_delete and writes a ledger entry.
    """

    def get_queryset(self, request):
        if not _can_view_deleted(request, self.model):
            return super().get_queryset(request)
        queryset = self.model.all_objects.get_queryset()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if _can_view_deleted(request, self.model):
            filters.insert(0, DeletedFilter)
        return filters

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if _can_view_deleted(request, self.model):
            columns.append("deletion_state")
        return columns

    @admin.display(description="deleted")
    def deletion_state(self, obj):
        if obj.deleted_at is None:
            return ""
        return format_html(
            '<span class="deleted-marker" title="{} by {}">Deleted</span>',
            obj.deleted_at.strftime("%Y-%m-%d %H:%M"),
            f"user #{obj.deleted_by_id}" if obj.deleted_by_id else "the system",
        )

    def has_change_permission(self, request, obj=None):
        # A deleted row is evidence of what was hidden: restore it before editing it.
        if obj is not None and obj.deleted_at is not None:
            return False
        return super().has_change_permission(request, obj)

    def has_restore_permission(self, request):
        opts = self.model._meta
        return request.user.has_perm(
            f"{opts.app_label}.change_{opts.model_name}"
        ) and _can_view_deleted(request, self.model)

    def has_hard_delete_permission(self, request):
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.hard_delete_{opts.model_name}")

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not _can_view_deleted(request, self.model):
            actions.pop("restore_selected", None)
        return actions

    # Deleting through the admin's own delete view and action is a soft delete.

    def delete_model(self, request, obj):
        rows_soft_delete(
            queryset=self.model.all_objects.filter(pk=obj.pk), actor=request.user, reason=""
        )

    def delete_queryset(self, request, queryset):
        rows_soft_delete(queryset=queryset, actor=request.user, reason="")

    def get_deleted_objects(self, objs, request):
        """What a soft delete hides: the rows and their cascading soft-delete dependants."""
        objs = list(objs)
        to_hide = [str(obj) for obj in objs]
        model_count = {self.model._meta.verbose_name_plural: len(objs)}
        pks = [obj.pk for obj in objs]
        for dependant, field in cascade_dependants(self.model):
            rows = list(dependant.objects.filter(**{f"{field.attname}__in": pks}))
            if rows:
                to_hide.append([f"{capfirst(dependant._meta.verbose_name)}: {r}" for r in rows])
                model_count[dependant._meta.verbose_name_plural] = len(rows)
        opts = self.model._meta
        perms_needed = set()
        if not request.user.has_perm(f"{opts.app_label}.delete_{opts.model_name}"):
            perms_needed.add(opts.verbose_name)
        return to_hide, model_count, perms_needed, []

    @admin.action(permissions=["restore"], description="Restore selected %(verbose_name_plural)s")
    def restore_selected(self, request, queryset):
        return self.confirm_action(
            request,
            queryset.filter(deleted_at__isnull=False),
            action="restore_selected",
            title="Restore",
            question="Restore these deleted {names}? Rows hidden together with them come back "
            "too; rows deleted separately stay deleted.",
            run=lambda rows, reason: (
                "Restored "
                + _described(rows_restore(queryset=rows, actor=request.user, reason=reason))
            ),
        )

    @admin.action(
        permissions=["hard_delete"],
        description="Delete selected %(verbose_name_plural)s permanently",
    )
    def hard_delete_selected(self, request, queryset):
        return self.confirm_action(
            request,
            queryset,
            action="hard_delete_selected",
            title="Delete permanently",
            question="Delete these {names} for good? This cannot be undone: the rows and "
            "their dependants are removed, and only their history keeps what they held.",
            run=lambda rows, reason: (
                "Deleted permanently "
                + _described(rows_hard_delete(queryset=rows, actor=request.user, reason=reason))
                + " The ledger records it."
            ),
            reason_required=True,
        )

    actions = ["restore_selected", "hard_delete_selected"]


def _target_label(content_type) -> str:
    """ "Sessions (shop.Session)", "Historical sessions (shop.HistoricalSession)"."""
    opts = content_type.model_class()._meta
    return f"{capfirst(opts.verbose_name_plural)} ({opts.label})"


def _policy_values(values: dict) -> dict:
    """The proposal fields as an officer reads them."""
    period = values["period_days"]
    return {
        "name": values["name"],
        "target model": ContentType.objects.get_for_id(values["target"]).model_class()._meta.label,
        "action": str(dict(PolicyAction.choices).get(values["action"], values["action"])),
        "period": "keep forever" if period is None else f"{period} day(s)",
        "basis field": values["basis_field"] or "(the model's default)",
        "exclusions": "; ".join(
            f"{e['field']} {e['lookup']} {e.get('value')!r}" for e in values["exclusions"] or []
        )
        or "none",
        "archive": "yes" if values["archive"] else "no",
        "enabled": "yes" if values["enabled"] else "no",
    }


def _pending_rows(policy: RetentionPolicy) -> dict:
    """What approving `policy` changes: each field's value in effect and proposed, and the
    fingerprint of the proposal shown."""
    fields = ["name", "period_days", "action", "basis_field", "exclusions", "archive", "enabled"]
    before = _policy_values(
        {**{name: getattr(policy, name) for name in fields}, "target": policy.target_id}
    )
    after = _policy_values(policy.pending_change)
    return {
        "policy": policy,
        "fingerprint": policy_fingerprint(policy),
        "rows": [
            (label, before[label], after[label], before[label] != after[label]) for label in after
        ],
    }


class PendingFilter(admin.SimpleListFilter):
    """Policies whose change awaits a second officer's approval."""

    title = "approval"
    parameter_name = "approval"

    def lookups(self, request, model_admin):
        return [("pending", "Awaits approval"), ("approved", "In effect")]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(pending_change__isnull=False)
        if self.value() == "approved":
            return queryset.filter(pending_change__isnull=True)
        return queryset


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(ConfirmActionMixin, TrackedHistoryAdmin):
    """Policies: validated on the form, each save a ledger entry; preview and run a purge.
    A change that destroys history or shortens a period waits for a second officer."""

    list_display = ["name", "target_model", "period", "action", "approval_state", "last_run"]
    list_filter = [PendingFilter, "enabled", "action", "archive"]
    search_fields = ["name"]
    actions = ["preview_purge", "run_now", "approve_selected"]
    readonly_fields = ["approval", "created_at", "updated_at"]

    @admin.display(description="approval")
    def approval_state(self, obj):
        """The list's short status; the change page's `approval` says what awaits whom."""
        if not obj.is_pending:
            return "In effect"
        return format_html('<strong class="policy-pending">{}</strong>', "Awaits approval")

    @admin.display(description="approval")
    def approval(self, obj):
        if not obj.is_pending:
            return "In effect"
        change = obj.pending_change
        proposer = obj.proposed_by.get_username() if obj.proposed_by else "the system"
        period = change["period_days"]
        return format_html(
            '<strong class="policy-pending">Awaits approval</strong>: {} {}, {}{} '
            "(proposed by {} on {}); until another officer approves, {}.",
            dict(PolicyAction.choices).get(change["action"], change["action"]),
            ContentType.objects.get_for_id(change["target"]).model_class()._meta.label,
            "keep forever" if period is None else f"after {period} day(s)",
            "" if change["enabled"] else ", disabled",
            proposer,
            f"{timezone.localtime(obj.proposed_at):%Y-%m-%d %H:%M}" if obj.proposed_at else "?",
            "purges run the values in effect" if obj.enabled else "purges skip this policy",
        )

    def has_approve_permission(self, request):
        return request.user.has_perm("retention.change_retentionpolicy")

    @admin.action(
        permissions=["approve"], description="Approve pending changes of selected policies"
    )
    def approve_selected(self, request, queryset):
        def run(policies, reason):
            approved = []
            for policy in policies:
                try:
                    policy_approve(
                        policy=policy,
                        actor=request.user,
                        reason=reason,
                        expected=request.POST.get(f"fingerprint_{policy.pk}", ""),
                    )
                    approved.append(policy.name)
                except RetentionRefused as exc:
                    self.message_user(request, str(exc), messages.ERROR)
            if not approved:
                raise RetentionRefused("No change was approved.")
            return (
                f"Approved the pending change of {', '.join(approved)}: it is in effect, "
                "and the ledger records who approved it."
            )

        return self.confirm_action(
            request,
            queryset.filter(pending_change__isnull=False),
            action="approve_selected",
            title="Approve",
            question="Approve the pending changes of these {names}? They take effect at once: "
            "the next purge deletes or anonymises by the new rules. You cannot approve a change "
            "you proposed.",
            run=run,
            changes=lambda policies: [_pending_rows(policy) for policy in policies],
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "target":
            ids = [ContentType.objects.get_for_model(m).pk for m in policy_targets()]
            kwargs["queryset"] = ContentType.objects.filter(pk__in=ids).order_by(
                "app_label", "model"
            )
            field = super().formfield_for_foreignkey(db_field, request, **kwargs)
            field.label_from_instance = _target_label
            return field
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="model", ordering="target__model")
    def target_model(self, obj):
        opts = obj.target.model_class()._meta  # may break after the app's name, to fit
        return format_html("{}.<wbr>{}", opts.app_label, opts.object_name)

    @admin.display(description="period")
    def period(self, obj):
        if obj.period_days is None:
            return "keep forever"
        return f"{obj.period_days} day{'' if obj.period_days == 1 else 's'}"

    @admin.display(description="last run")
    def last_run(self, obj):
        run = obj.runs.exclude(status=PurgeRun.Status.DRY_RUN).first()
        if run is None:
            return "never"
        return f"{run.started_at:%Y-%m-%d}, {run.purged} {run.get_status_display().lower()}"

    def save_model(self, request, obj, form, change):
        policy_save(policy=obj, actor=request.user, reason="")
        if obj.is_pending:
            self.message_user(
                request,
                f"The change to {obj.name!r} deletes or anonymises history or shortens a "
                "period: it awaits approval by another officer; until then purges "
                + ("run the values in effect." if obj.enabled else "skip the policy."),
                messages.WARNING,
            )

    def has_run_purge_permission(self, request):
        return request.user.has_perm("retention.run_purge_retentionpolicy")

    @admin.action(permissions=["run_purge"], description="Preview purge of selected policies")
    def preview_purge(self, request, queryset):
        runs = []
        for policy in queryset:
            try:
                runs.append(policy_purge(policy=policy, actor=request.user, dry_run=True))
            except RetentionRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "title": "Purge preview",
            "runs": runs,
            "opts": self.model._meta,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/retention/purge_preview.html", context)

    @admin.action(permissions=["run_purge"], description="Run selected policies now")
    def run_now(self, request, queryset):
        # An approved policy with a pending change runs its approved values; a new one is
        # not in effect until approved.
        unapproved = Q(pending_change__isnull=False, enabled=False)
        pending = queryset.filter(unapproved)
        if pending:
            names = ", ".join(p.name for p in pending)
            self.message_user(
                request,
                f"Skipped {names}: not in effect until a second officer approves its change.",
                messages.WARNING,
            )
        ids = list(queryset.exclude(unapproved).values_list("pk", flat=True))
        for policy_id in ids:
            transaction.on_commit(partial(_purge_queue, policy_id))
        self.message_user(
            request,
            f"Queued {len(ids)} purge(s): their results appear in the purge run log.",
            messages.SUCCESS,
        )


def _purge_queue(policy_id: int) -> None:
    # Run eagerly (no broker, the demo) a failure comes back here: the run log says what
    # failed, as it does for a worker's run.
    with suppress(PurgeFailed, RetentionRefused):
        purge_policy.delay(policy_id)


@admin.register(PurgeRun)
class PurgeRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The run log, read-only for everyone: what each run removed, kept and left behind."""

    list_display = ["started", "policy_name", "run_model", "status", "purged", "held", "backlog"]
    list_filter = ["status", "policy", "started_at"]
    date_hierarchy = "started_at"
    list_select_related = ["policy"]
    show_full_result_count = False

    @admin.display(description="policy", ordering="policy__name")
    def policy_name(self, obj):
        # Wrapped in a narrow column, so the counts stay in view beside it.
        return format_html(
            '<span style="display:inline-block;max-width:14em">{}</span>', obj.policy
        )

    @admin.display(description="model", ordering="model")
    def run_model(self, obj):
        # Runs logged before the model was recorded show the policy's target today.
        return obj.model or f"{obj.policy.target.model_class()._meta.label} (policy's today)"

    @admin.display(description="started", ordering="started_at")
    def started(self, obj):
        return f"{timezone.localtime(obj.started_at):%Y-%m-%d %H:%M}"


def _record(model, object_id):
    """The row of `model` with key `object_id`, None when there is none or it is no key."""
    try:
        pk = model._meta.pk.to_python(object_id)
    except ValidationError:
        return None
    return model._base_manager.filter(pk=pk).first()


class LegalHoldForm(forms.ModelForm):
    """Place a hold: which record (a subject holds everything about them), ground, reason."""

    class Meta:
        model = LegalHold
        fields = ["content_type", "object_id", "ground", "requested_by", "reason"]
        labels = {"content_type": "Kind of record", "object_id": "Record id"}

    def clean(self):
        data = super().clean()
        content_type, object_id = data.get("content_type"), data.get("object_id")
        if content_type and object_id:
            model = content_type.model_class()
            self.record = _record(model, object_id)
            if self.record is None:
                raise forms.ValidationError(
                    f"There is no {model._meta.verbose_name} with id {object_id}."
                )
        if data.get("ground") in RESTRICTION_GROUNDS and not data.get("requested_by", "").strip():
            self.add_error(
                "requested_by", "Say who asked for the restriction (the data subject, a court, …)."
            )
        return data


@admin.register(LegalHold)
class LegalHoldAdmin(ConfirmActionMixin, TrackedHistoryAdmin):
    """Holds are placed with a form and released with an action; both are ledger entries.
    A hold is evidence: it is never edited or deleted."""

    form = LegalHoldForm
    list_display = ["__str__", "kind", "ground", "placed_at", "placed_by", "released_at", "active"]
    list_filter = [("released_at", admin.EmptyFieldListFilter), "ground"]
    search_fields = ["object_id", "reason"]
    actions = ["release_selected"]

    @admin.display(boolean=True, description="active")
    def active(self, obj):
        return obj.is_active

    @admin.display(description="kind")
    def kind(self, obj):
        return "Restriction (Art. 18)" if obj.is_restriction else "Legal hold"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "content_type":
            # Registered models, and what apps register as holdable (backups: cleanup never
            # deletes a held backup).
            ids = [ContentType.objects.get_for_model(m).pk for m in holdable_models()]
            kwargs["queryset"] = ContentType.objects.filter(pk__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return super().get_fields(request, obj)
        return ["content_type", "object_id", "ground", "requested_by", "reason", "placed_by",
                "placed_at", "released_by", "released_at", "release_reason"]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj is not None else []

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        placed = hold_place(
            record=form.record,
            reason=obj.reason,
            ground=obj.ground,
            requested_by=obj.requested_by,
            actor=request.user,
        )
        obj.pk = placed.pk

    @admin.action(permissions=["change"], description="Release selected holds")
    def release_selected(self, request, queryset):
        def run(holds, reason):
            for hold in holds:
                hold_release(hold=hold, reason=reason, actor=request.user)
            return f"Released {len(holds)} hold(s); the rows they kept can be purged again."

        return self.confirm_action(
            request,
            queryset.filter(released_at__isnull=True),
            action="release_selected",
            title="Release",
            question="Release these holds? Their rows become subject to purge and erasure.",
            run=run,
            reason_required=True,
        )
