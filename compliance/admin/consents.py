"""Admin of consents: purposes, their texts, the current state per subject and the
event log, with the timeline, receipt and record pages."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import BadRequest, ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from versions.admin import ReadOnlyAdminMixin, TrackedHistoryAdmin

from ..forms import ConsentRecordForm
from ..models import ConsentEvent, ConsentPurpose, ConsentState, ConsentText
from ..registry import registry
from ..selectors import consent_receipt, consent_timeline, subject_get, subject_gone
from ..services import ComplianceRefused, consent_record
from .common import _local

ADMIN_COLLECTION_POINT = "admin (recorded by staff)"


def _short_date(moment) -> str:
    return _local(moment, "Y-m-d")


def _may_record(request) -> bool:
    return request.user.has_perm("compliance.add_consentevent")


def _subject_or_404(subject_id):
    model = registry.subject_model()
    try:
        key = model._meta.pk.to_python(subject_id)
    except ValidationError as exc:
        raise Http404(f"No {model._meta.verbose_name} with the id {subject_id!r}.") from exc
    return get_object_or_404(model._base_manager, pk=key)


def _consent_subject_or_404(subject_id):
    """The subject whose consent evidence is shown: their row, or once it is gone (purged),
    the subject as history left them, or failing that a bare key while consent events still
    name it (evidence outlives its subject's row and history). 404 when nothing names it."""
    subject = subject_get(subject_id)
    if subject is not None:
        return subject
    model = registry.subject_model()
    try:
        key = model._meta.pk.to_python(subject_id)
    except ValidationError as exc:
        raise Http404(f"No {model._meta.verbose_name} with the id {subject_id!r}.") from exc
    if not ConsentEvent.objects.filter(subject_id=key).exists():
        raise Http404(f"No {model._meta.verbose_name} with the id {subject_id!r}.")
    return model(pk=key)


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


@admin.register(ConsentState)
class ConsentStateAdmin(ReadOnlyAdminMixin, TrackedHistoryAdmin):
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
    posted = request.POST.get("post") == "yes"
    form = ConsentRecordForm(request.POST if posted else None)
    if posted and form.is_valid():
        try:
            with transaction.atomic():  # all of the selection or none of it
                for subject, purpose in pairs:
                    consent_record(
                        subject=subject,
                        purpose=purpose,
                        granted=granted,
                        collection_point=form.cleaned_data["collection_point"],
                        actor=request.user,
                        reason=form.cleaned_data["reason"],
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
        "form": form,
        "opts": ConsentState._meta,
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, "admin/compliance/consent_confirm.html", context)


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every grant and withdrawal, read-only for everyone; a subject's timeline and receipt."""

    list_display = ["occurred", "subject_timeline", "purpose", "action", "collection_point"]
    list_filter = ["purpose", GrantedFilter, "occurred_at"]
    ordering = ["-occurred_at", "-id"]
    # No join on the subject: an event outlives its subject's row (a join would drop it).
    list_select_related = ["purpose", "text"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    fields = ["subject", "purpose", "text", "text_sha256", "granted", "occurred_at",
              "ip_address", "user_agent", "collection_point", "actor"]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        # The subjects in one query by key (the base manager: soft-deleted ones too); a gone
        # subject's row is simply not found.
        return super().get_queryset(request).prefetch_related("subject")

    @admin.display(description="subject", ordering="subject_id")
    def subject_timeline(self, obj):
        """The subject, or their key once their row has gone, linked to their timeline."""
        try:
            label = str(obj.subject)
        except ObjectDoesNotExist:
            label = f"{obj.subject_id} (row gone)"
        return _timeline_link(obj.subject_id, label)

    @admin.display(description="time", ordering="occurred_at")
    def occurred(self, obj):
        return format_html(
            '<span style="white-space:nowrap">{}</span>',
            _local(obj.occurred_at, "Y-m-d H:i"),
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
        subject = _consent_subject_or_404(subject_id)
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
            # Consent is recorded for a subject whose row is there, never for a gone one.
            "may_record": _may_record(request) and not subject_gone(subject),
            "opts": self.model._meta,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/compliance/consent_timeline.html", context)

    def receipt_view(self, request, subject_id):
        """The consent receipt: JSON evidence of every event with its text's sha256."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        subject = _consent_subject_or_404(subject_id)
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
        if request.POST.get("granted") not in ("yes", "no"):
            raise BadRequest("Say whether consent is granted (yes) or withdrawn (no).")
        granted = request.POST["granted"] == "yes"
        timeline = reverse("admin:compliance_consent_timeline", args=[subject.pk])
        return _confirm_record(
            request,
            self.admin_site,
            granted=granted,
            pairs=[(subject, purpose)],
            hidden={"purpose": purpose.slug, "granted": "yes" if granted else "no"},
            done_url=timeline,
        )
