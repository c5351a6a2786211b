"""What the registry asks of every model's admin (the admin site adds it to each
ModelAdmin), and the admin of consents: purposes, texts, states, events, a subject's consent
timeline and receipt.

The inventory page lives on the admin site (sites.py).
"""

from retention.selectors import held_q
from retention.services import rows_hard_delete
from retention.softdelete import is_soft_delete_model

from .registry import registry

__all__ = [
    "ConsentEventAdmin",
    "ConsentPurposeAdmin",
    "ConsentStateAdmin",
    "ConsentTextAdmin",
    "RegistryAdminMixin",
    "with_registry_rules",
]


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


# Consents ------------------------------------------------------------------------------
# Below the mixin: registering builds the admin site, which imports the mixin from here.

import json  # noqa: E402

from django import forms  # noqa: E402
from django.contrib import admin, messages  # noqa: E402
from django.contrib.admin import helpers  # noqa: E402
from django.core.exceptions import PermissionDenied, ValidationError  # noqa: E402
from django.db import transaction  # noqa: E402
from django.http import Http404, HttpResponse  # noqa: E402
from django.shortcuts import get_object_or_404, redirect  # noqa: E402
from django.template.response import TemplateResponse  # noqa: E402
from django.urls import path, reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.dateformat import format as date_format  # noqa: E402
from django.utils.html import format_html  # noqa: E402

from versions.admin import TrackedHistoryAdmin  # noqa: E402

from .models import ConsentEvent, ConsentPurpose, ConsentState, ConsentText  # noqa: E402
from .selectors import consent_receipt, consent_timeline  # noqa: E402
from .services import ComplianceRefused, consent_record  # noqa: E402

ADMIN_COLLECTION_POINT = "admin (recorded by staff)"


def _short_datetime(moment, pattern="j M Y, H:i") -> str:
    return date_format(timezone.localtime(moment), pattern) if moment else "—"


def _short_date(moment) -> str:
    return _short_datetime(moment, "Y-m-d")


def _may_record(request) -> bool:
    return request.user.has_perm("compliance.add_consentevent")


def _subject_or_404(subject_id):
    model = registry.subject_model()
    try:
        key = model._meta.pk.to_python(subject_id)
    except ValidationError as exc:
        raise Http404(f"No {model._meta.verbose_name} with the id {subject_id!r}.") from exc
    return get_object_or_404(model._base_manager, pk=key)


def _timeline_link(subject_id, label):
    """The subject, linked to their consent timeline, in a column narrow enough to leave the
    others in view."""
    url = reverse("admin:compliance_consent_timeline", args=[subject_id])
    return format_html(
        '<a href="{}" style="display:inline-block;max-width:13em;overflow-wrap:anywhere">{}</a>',
        url,
        label,
    )


@admin.register(ConsentPurpose)
class ConsentPurposeAdmin(TrackedHistoryAdmin):
    list_display = ["name", "slug", "active", "latest_version"]
    list_filter = ["active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    @admin.display(description="latest text")
    def latest_version(self, obj):
        text = obj.latest_text()
        return f"v{text.version}" if text else "none published"

    def has_delete_permission(self, request, obj=None):
        return False  # texts and events refer to it; deactivate it instead


class ConsentTextForm(forms.ModelForm):
    # The exact wording: kept as typed, leading and trailing whitespace included.
    text = forms.CharField(widget=forms.Textarea, strip=False)

    class Meta:
        model = ConsentText
        fields = ["purpose", "version", "text", "published_at"]


@admin.register(ConsentText)
class ConsentTextAdmin(TrackedHistoryAdmin):
    """Texts are written once; after the first consent to one it is read-only for good."""

    form = ConsentTextForm
    list_display = ["__str__", "purpose", "version", "short_sha256", "published_at", "consented"]
    list_filter = ["purpose"]
    list_select_related = ["purpose"]
    readonly_fields = ["sha256"]

    @admin.display(description="sha256")
    def short_sha256(self, obj):
        return format_html('<code title="{}">{}…</code>', obj.sha256, obj.sha256[:12])

    @admin.display(boolean=True, description="consented to")
    def consented(self, obj):
        return obj.is_consented

    def get_fields(self, request, obj=None):
        return ["purpose", "version", "text", "sha256", "published_at"]

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_consented:
            return False  # evidence: publish a new version instead
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


class GrantedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("granted", "Granted"), ("withdrawn", "Withdrawn")]

    def queryset(self, request, queryset):
        if self.value() in ("granted", "withdrawn"):
            return queryset.filter(granted=self.value() == "granted")
        return queryset


class _ReadOnly:
    """Nobody adds, changes or deletes these rows in the admin: consent_record writes them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ConsentState)
class ConsentStateAdmin(_ReadOnly, TrackedHistoryAdmin):
    """Current consents, filtered by purpose and state; grant or withdraw selected ones."""

    # Four columns, so that the list fits a 1280-pixel window beside the filters; the change
    # page shows granted_at and revoked_at both.
    list_display = ["subject_timeline", "purpose", "state", "version"]
    list_filter = ["purpose", GrantedFilter]
    ordering = ["-updated_at", "-id"]
    list_select_related = ["subject", "purpose", "text"]
    show_full_result_count = False
    actions = ["grant_selected", "withdraw_selected"]

    @admin.display(description="state", ordering="updated_at")
    def state(self, obj):
        if obj.granted:
            return f"granted since {_short_date(obj.granted_at)}"
        return f"withdrawn since {_short_date(obj.revoked_at)}"

    @admin.display(description="text")
    def version(self, obj):
        return f"v{obj.text.version}"

    @admin.display(description="subject (consent timeline)", ordering="subject")
    def subject_timeline(self, obj):
        return _timeline_link(obj.subject_id, obj.subject)

    @admin.display(description="granted at", ordering="granted_at")
    def granted_on(self, obj):
        return _short_date(obj.granted_at)

    @admin.display(description="withdrawn at", ordering="revoked_at")
    def withdrawn_on(self, obj):
        return _short_date(obj.revoked_at)

    def has_record_permission(self, request):
        return _may_record(request)

    @admin.action(permissions=["record"], description="Grant selected consents")
    def grant_selected(self, request, queryset):
        return self._record_selected(request, queryset, granted=True)

    @admin.action(permissions=["record"], description="Withdraw selected consents")
    def withdraw_selected(self, request, queryset):
        return self._record_selected(request, queryset, granted=False)

    def _record_selected(self, request, queryset, *, granted):
        action = "grant_selected" if granted else "withdraw_selected"
        states = list(queryset.select_related("subject", "purpose"))
        return _confirm_record(
            request,
            self.admin_site,
            granted=granted,
            pairs=[(state.subject, state.purpose) for state in states],
            hidden={"action": action, helpers.ACTION_CHECKBOX_NAME: [s.pk for s in states]},
            done_url=None,
        )


def _confirm_record(request, admin_site, *, granted, pairs, hidden, done_url):
    """The confirmation page of a grant or a withdrawal; on POST with post=yes, record each
    pair through consent_record. Returns a response, or None to go back to the list."""
    if not _may_record(request):
        raise PermissionDenied
    verb = "Grant" if granted else "Withdraw"
    collection_point = request.POST.get("collection_point", ADMIN_COLLECTION_POINT).strip()
    reason = request.POST.get("reason", "").strip()
    if request.POST.get("post") == "yes":
        try:
            with transaction.atomic():  # all of the selection or none of it
                for subject, purpose in pairs:
                    consent_record(
                        subject=subject,
                        purpose=purpose,
                        granted=granted,
                        collection_point=collection_point,
                        actor=request.user,
                        reason=reason,
                    )
        except ComplianceRefused as exc:
            messages.error(request, str(exc))
        else:
            done = "granted" if granted else "withdrawn"
            messages.success(request, f"Recorded {len(pairs)} consent(s) as {done}.")
        return redirect(done_url) if done_url else None
    context = {
        **admin_site.each_context(request),
        "title": f"{verb} consent: are you sure?",
        "verb": verb,
        "granted": granted,
        "pairs": pairs,
        "hidden": [
            (name, value)
            for name, values in hidden.items()
            for value in (values if isinstance(values, list) else [values])
        ],
        "collection_point": collection_point,
        "reason": reason,
        "opts": ConsentState._meta,
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/compliance/consent_confirm.html", context)


@admin.register(ConsentEvent)
class ConsentEventAdmin(_ReadOnly, admin.ModelAdmin):
    """Every grant and withdrawal, read-only for everyone; a subject's timeline and receipt."""

    list_display = ["occurred", "subject_timeline", "purpose", "action", "collection_point"]
    list_filter = ["purpose", GrantedFilter, "occurred_at"]
    ordering = ["-occurred_at", "-id"]
    list_select_related = ["subject", "purpose", "text"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    fields = ["subject", "purpose", "text", "text_sha256", "granted", "occurred_at",
              "ip_address", "user_agent", "collection_point", "actor"]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="subject", ordering="subject")
    def subject_timeline(self, obj):
        return _timeline_link(obj.subject_id, obj.subject)

    @admin.display(description="time", ordering="occurred_at")
    def occurred(self, obj):
        return format_html(
            '<span style="white-space:nowrap">{}</span>',
            _short_datetime(obj.occurred_at, "Y-m-d H:i"),
        )

    @admin.display(description="event (text)", ordering="granted")
    def action(self, obj):
        return f"{obj.get_granted_display()} (v{obj.text.version})"

    @admin.display(description="text sha256")
    def text_sha256(self, obj):
        return obj.text.sha256

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "subject/<path:subject_id>/timeline/",
                view(self.timeline_view),
                name="compliance_consent_timeline",
            ),
            path(
                "subject/<path:subject_id>/receipt/",
                view(self.receipt_view),
                name="compliance_consent_receipt",
            ),
            path(
                "subject/<path:subject_id>/record/",
                view(self.record_view),
                name="compliance_consent_record",
            ),
            *super().get_urls(),
        ]

    def timeline_view(self, request, subject_id):
        """Every consent event of one subject in order, and the current state per purpose."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        subject = _subject_or_404(subject_id)
        states = {s.purpose_id: s for s in ConsentState.objects.filter(subject_id=subject.pk)}
        purposes = [
            (purpose, states.get(purpose.pk))
            for purpose in ConsentPurpose.objects.all()
            if purpose.active or purpose.pk in states
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Consent timeline of {subject}",
            "subject": subject,
            "events": consent_timeline(subject),
            "purposes": purposes,
            "may_record": _may_record(request),
            "opts": self.model._meta,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/compliance/consent_timeline.html", context)

    def receipt_view(self, request, subject_id):
        """The consent receipt: JSON evidence of every event with its text's sha256."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        subject = _subject_or_404(subject_id)
        body = json.dumps(consent_receipt(subject), indent=2, ensure_ascii=False)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        filename = f"consent-receipt-{subject._meta.model_name}-{subject.pk}.json"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def record_view(self, request, subject_id):
        """Grant or withdraw one purpose for one subject, after a confirmation."""
        if request.method != "POST" or not _may_record(request):
            raise PermissionDenied
        subject = _subject_or_404(subject_id)
        purpose = get_object_or_404(ConsentPurpose, slug=request.POST.get("purpose", ""))
        granted = request.POST.get("granted") == "yes"
        timeline = reverse("admin:compliance_consent_timeline", args=[subject.pk])
        return _confirm_record(
            request,
            self.admin_site,
            granted=granted,
            pairs=[(subject, purpose)],
            hidden={"purpose": purpose.slug, "granted": "yes" if granted else "no"},
            done_url=timeline,
        )
