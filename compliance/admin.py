"""Admin of the compliance app's models: requests, exports and consents (the registry's
rules on every admin are in registry_admin.py; the inventory and subject pages are on the
admin site, sites.py)."""

import json
from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers, widgets
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import (
    BadRequest,
    ObjectDoesNotExist,
    PermissionDenied,
    ValidationError,
)
from django.db import transaction
from django.db.models import BooleanField, Case, Q, Value, When
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst

from versions.admin import ReadOnlyAdminMixin, TrackedHistoryAdmin
from versions.models import LedgerAction

from . import config
from .forms import ConsentRecordForm
from .models import (
    ConsentEvent,
    ConsentPurpose,
    ConsentState,
    ConsentText,
    ErasureCertificate,
    SubjectExport,
    SubjectRequest,
)
from .registry import registry
from .selectors import (
    DUE_SOON_DAYS,
    SubjectAmbiguous,
    consent_receipt,
    consent_timeline,
    erasure_plan,
    request_due_soon_q,
    request_find,
    request_overdue_q,
    request_search_q,
    request_steps,
    subject_find,
    subject_get,
    subject_gone,
)
from .services import (
    ANSWERABLE,
    DOWNLOAD_PERMISSION,
    ERASE_PERMISSION,
    NOTHING_LEFT,
    ComplianceRefused,
    consent_record,
    export_download,
    export_may_download,
    request_complete,
    request_create,
    request_extend,
    request_reject,
    request_start,
    request_verify,
    subject_erase,
    subject_export_queue,
)

__all__ = [
    "REQUEST_TRANSITIONS",
    "ErasureCertificateAdmin",
    "ConsentEventAdmin",
    "ConsentPurposeAdmin",
    "ConsentStateAdmin",
    "ConsentTextAdmin",
    "DeadlineFilter",
    "RequestTransition",
    "SubjectExportAdmin",
    "SubjectRequestAdmin",
]


def subject_tools(
    request, admin_site, subject_id, *, kind=None, request_id=None, gone=False, answerable=True
) -> list[tuple[str, str]]:
    """(label, url) of the pages about one data subject that `request.user` may open: the
    overview, consents, and the export, erasure and restriction pages. With a request's
    `kind`, only the page that kind of request needs besides the overview, and no export or
    erasure unless the request is `answerable` (verified and open). A subject whose row is
    `gone` (known from history only) has no consents."""
    user = request.user
    opts = registry.subject_model()._meta
    pages = [
        (None, f"{opts.app_label}.view_{opts.model_name}", "Everything about this person",
         "compliance_subject_overview"),
        (None, "compliance.view_consentevent", "Consent timeline", "compliance_consent_timeline"),
        (None, "compliance.view_consentevent", "Consent receipt (JSON)",
         "compliance_consent_receipt"),
        (SubjectRequest.Kind.ACCESS, "compliance.add_subjectexport", "Run export",
         "compliance_subject_export"),
        (SubjectRequest.Kind.ERASURE, ERASE_PERMISSION, "Preview erasure",
         "compliance_subject_erasure"),
        (SubjectRequest.Kind.RESTRICTION, "retention.add_legalhold", "Restrict processing",
         "compliance_subject_restrict"),
    ]  # fmt: skip
    tools = []
    for page_kind, permission, label, name in pages:
        if kind is not None and page_kind not in (None, kind):
            continue
        if kind is not None and "consent" in name:
            continue
        if gone and "consent" in name:
            continue
        answers = page_kind in (SubjectRequest.Kind.ACCESS, SubjectRequest.Kind.ERASURE)
        if answers and not answerable:
            continue
        if user.has_perm(permission):
            url = reverse(f"admin:{name}", args=[subject_id], current_app=admin_site.name)
            if request_id is not None and page_kind is not None:
                url += f"?request={request_id}"  # the page names the request in its reason
            tools.append((label, url))
    return tools


def _answered_request(http_request) -> SubjectRequest | None:
    """The request a page opened from a request's page answers (``?request=<id>``, then a
    hidden field of its form), or None when none is named. A named request that is
    malformed or unknown is refused (ComplianceRefused): never run without the link."""
    named = http_request.POST.get("request") or http_request.GET.get("request", "")
    if not named:
        return None
    found = request_find(named) if named.isascii() else None
    if found is None:
        raise ComplianceRefused(
            f"No data-subject request {named[:20]!r}: open the export or erasure from the "
            "request's own page. Nothing was run."
        )
    return found


def _request_reason(answered: SubjectRequest | None) -> str:
    """The default reason of a page that answers a request."""
    return f"Request #{answered.pk}" if answered is not None else ""


_STEP_NAMES = {
    "create": "Received",
    "verify": "Identity verified",
    "start": "Started",
    "complete": "Completed",
    "reject": "Rejected",
    "extend": "Extended",
}


def _step_label(entry) -> str:
    """One ledger entry about a request, as a step: "Identity verified", "Export #3 done"."""
    details = entry.details
    if entry.action == LedgerAction.REQUEST:
        label = _STEP_NAMES.get(details.get("transition"), details.get("transition", ""))
        if "export" in details:
            label += f" (export #{details['export']} ready: awaiting delivery)"
        if "certificate" in details:
            label += f" (erasure certificate #{details['certificate']})"
        return label
    if entry.action == LedgerAction.EXPORT:
        return f"Export #{details.get('export')} written"
    if entry.action == LedgerAction.EXPORT_DOWNLOAD:
        return f"Export #{details.get('export')} downloaded"
    return "Erasure committed"


def _local(moment, pattern="j M Y, H:i") -> str:
    """A date and time in the local time zone (3 Oct 2024, 14:05 by default); "—" for none.
    The one formatter of this module's lists and messages."""
    return date_format(timezone.localtime(moment), pattern) if moment else "—"


def _when(moment) -> str:
    return _local(moment, "Y-m-d H:i")


class DeadlineFilter(admin.SimpleListFilter):
    """Open requests past their due date, or due within the next days."""

    title = "deadline"
    parameter_name = "deadline"
    OVERDUE, DUE_SOON = "overdue", "due_soon"

    def lookups(self, request, model_admin):
        return [(self.OVERDUE, "Overdue"), (self.DUE_SOON, f"Due within {DUE_SOON_DAYS} days")]

    def queryset(self, request, queryset):
        if self.value() == self.OVERDUE:
            return queryset.filter(request_overdue_q())
        if self.value() == self.DUE_SOON:
            return queryset.filter(request_due_soon_q())
        return queryset


def subject_field(admin_site) -> forms.Field:
    """The subject of a new request: an id (the magnifier looks one up) or an email, of a
    subject with a row or of one whose row is gone (`subject_find`)."""
    relation = SubjectRequest._meta.get_field("subject").remote_field
    return forms.CharField(
        label=capfirst(registry.subject_model()._meta.verbose_name),
        # Wide enough for an email (the lookup's own class fits an id only).
        widget=widgets.ForeignKeyRawIdWidget(relation, admin_site, attrs={"class": "vTextField"}),
        help_text="Their id or email. Someone whose record was deleted is found through the "
        "history rows that still hold their data.",
    )


class SubjectRequestAddForm(forms.ModelForm):
    """Record a request: who it is about, what is asked, under which law, when it arrived."""

    # Not the model's received_at: the registry makes a retention basis read-only in the admin.
    received = forms.SplitDateTimeField(
        label="Received at",
        initial=timezone.now,
        widget=widgets.AdminSplitDateTime,
        help_text="When the request reached you (any channel): the clock starts then.",
    )

    class Meta:
        model = SubjectRequest
        # `subject` is a field of the admin's (`subject_field`): it takes someone whose row is
        # gone too, whom the model's foreign key cannot name.
        fields = ["kind", "jurisdiction"]

    def clean_subject(self):
        try:
            subject = subject_find(self.cleaned_data["subject"])
        except SubjectAmbiguous as exc:
            raise forms.ValidationError(str(exc)) from exc
        if subject is None:
            name = registry.subject_model()._meta.verbose_name
            raise forms.ValidationError(f"No {name} has or had this id or email.")
        return subject

    def clean_received(self):
        received = self.cleaned_data["received"]
        if received > timezone.now():
            raise forms.ValidationError("This is in the future: give when the request arrived.")
        return received


class VerifyForm(forms.Form):
    method = forms.ChoiceField(
        label="How was the identity verified?",
        choices=SubjectRequest.VerificationMethod.choices,
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label="Note",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="What was checked; never a copy of a document or of the subject's details.",
    )


class ExtendForm(forms.Form):
    due_at = forms.DateField(label="New due date", required=False, widget=widgets.AdminDateWidget)
    months = forms.IntegerField(label="or months", required=False, min_value=1, max_value=2)
    days = forms.IntegerField(label="and/or days", required=False, min_value=1, max_value=90)
    reason = forms.CharField(
        label="Reason (told to the subject)", widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason", required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60})
    )


class RejectForm(forms.Form):
    reason = forms.CharField(
        label="Reason for the refusal (told to the subject, GDPR Art. 12(4))",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


@dataclass(frozen=True)
class RequestTransition:
    """A button on a request's page: its confirmation form, and the service it runs."""

    label: str
    question: str
    form: type[forms.Form]
    states: tuple[str, ...]
    run: Callable  # (request, actor, cleaned_data) -> SubjectRequest
    done: str


_State = SubjectRequest.State
_OPEN = (_State.RECEIVED, _State.VERIFIED, _State.IN_PROGRESS)
REQUEST_TRANSITIONS = {
    "verify": RequestTransition(
        label="Verify identity",
        question="Record how the requester's identity was verified. The due date does not "
        "move: the clock runs from receipt.",
        form=VerifyForm,
        states=(_State.RECEIVED,),
        run=lambda obj, actor, data: request_verify(
            request=obj, actor=actor, method=data["method"], note=data["note"]
        ),
        done="Identity verified.",
    ),
    "start": RequestTransition(
        label="Start",
        question="Start work on this request.",
        form=ReasonForm,
        states=(_State.VERIFIED,),
        run=lambda obj, actor, data: request_start(request=obj, actor=actor, reason=data["reason"]),
        done="Request started.",
    ),
    "complete": RequestTransition(
        label="Complete",
        question="Mark this request as answered. This is final.",
        form=ReasonForm,
        states=(_State.IN_PROGRESS,),
        run=lambda obj, actor, data: request_complete(
            request=obj, actor=actor, reason=data["reason"]
        ),
        done="Request completed.",
    ),
    "extend": RequestTransition(
        label="Extend",
        question="Extend the deadline once, giving the reason: a new due date, or a period "
        "(GDPR: up to two months; CCPA: up to 45 days). Only before the original due date.",
        form=ExtendForm,
        states=_OPEN,
        run=lambda obj, actor, data: request_extend(
            request=obj,
            actor=actor,
            reason=data["reason"],
            due_at=data["due_at"],
            months=data["months"] or 0,
            days=data["days"] or 0,
        ),
        done="Deadline extended.",
    ),
    "reject": RequestTransition(
        label="Reject",
        question="Refuse this request, stating the reason. This is final.",
        form=RejectForm,
        states=_OPEN,
        run=lambda obj, actor, data: request_reject(
            request=obj, actor=actor, reason=data["reason"]
        ),
        done="Request rejected.",
    ),
}


@admin.register(SubjectRequest)
class SubjectRequestAdmin(TrackedHistoryAdmin):
    """Requests are recorded with the add form and moved on with the buttons of their page;
    nothing is edited in place or deleted.

    Other features add buttons to a request's page by overriding `get_request_tools` (or
    the `request_tools` block of the change form template).
    """

    # The due date first: it is what the list is opened for.
    list_display = ["__str__", "due", "state", "kind", "jurisdiction", "about", "received_at"]
    list_filter = [DeadlineFilter, "state", "kind", "jurisdiction"]
    list_select_related = ["subject"]
    search_fields = ["subject_key"]
    search_help_text = "The subject's email or id."
    raw_id_fields = ["subject"]
    ordering = ["due_at", "pk"]
    change_form_template = "admin/compliance/subjectrequest/change_form.html"
    transition_template = "admin/compliance/subjectrequest/transition.html"
    fieldsets = [
        (None, {"fields": ["kind", "subject", "subject_key", "jurisdiction", "state"]}),
        (
            "Deadline",
            {
                "fields": [
                    "received_at",
                    "due",
                    "original_due_at",
                    "latest_due_at",
                    "extended_at",
                    "extended_by",
                    "extension_reason",
                ]
            },
        ),
        (
            "Identity verification",
            {"fields": ["verified_at", "verified_by", "verification_method", "verification_note"]},
        ),
        (
            "Progress",
            {
                "fields": [
                    "started_at",
                    "completed_at",
                    "rejected_at",
                    "rejection_reason",
                    "answered_by",
                    "steps",
                ]
            },
        ),
    ]

    @admin.display(description="answered by")
    def answered_by(self, obj):
        """The exports and erasures run from this request's page, linked."""
        links = [
            (
                reverse("admin:compliance_subjectexport_change", args=[export.pk]),
                f"{export} ({export.get_status_display().lower()})",
            )
            for export in obj.exports.all()
        ] + [
            (reverse("admin:compliance_erasurecertificate_change", args=[cert.pk]), str(cert))
            for cert in obj.erasure_certificates.all()
        ]
        if not links:
            return "—"
        return format_html_join("", '<a href="{}">{}</a><br>', links)

    @admin.display(description="steps")
    def steps(self, obj):
        """Each step with who took it and when, from the ledger: the request's own changes
        and the exports, downloads and erasures that answered it."""
        rows = [
            (
                _when(entry.created_at),
                _step_label(entry),
                entry.actor_label,
                entry.channel,
            )
            for entry in request_steps(obj)
        ]
        if not rows:
            return "—"
        return format_html(
            "<table><thead><tr><th>When</th><th>Step</th><th>Who</th><th>Through</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

    @admin.display(description="subject")
    def about(self, obj):
        """The subject, or their key once their row has gone."""
        if obj.subject_id is None:
            return f"{obj.subject_key} (row gone)" if obj.subject_key else "-"
        return str(obj.subject)

    @admin.display(description="due", ordering="due_at")
    def due(self, obj):
        shown = _when(obj.due_at)
        if obj.extended_at is not None:
            shown += " (extended)"
        if obj.is_overdue:
            return format_html(
                '<strong class="request-overdue" style="color: var(--error-fg)">{} — overdue'
                "</strong>",
                shown,
            )
        return shown

    @admin.display(description="due without extension")
    def original_due_at(self, obj):
        return _when(obj.original_due_at)

    @admin.display(description="latest due date the law allows")
    def latest_due_at(self, obj):
        return _when(obj.latest_due_at)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["kind", "subject", "jurisdiction", "received"]})]
        return self.fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = SubjectRequestAddForm
            kwargs["fields"] = SubjectRequestAddForm.Meta.fields
            form = super().get_form(request, obj, change, **kwargs)
            form.base_fields = {"subject": subject_field(self.admin_site), **form.base_fields}
            return form
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [name for _, options in self.fieldsets for name in options["fields"]]

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(request_search_q(search_term)), False

    def has_delete_permission(self, request, obj=None):
        return False  # the record of how a request was handled is kept

    def save_model(self, request, obj, form, change):
        if change:
            return  # every field is read-only: a request changes through its buttons
        created = request_create(
            subject=form.cleaned_data["subject"],
            kind=form.cleaned_data["kind"],
            jurisdiction=form.cleaned_data["jurisdiction"],
            received_at=form.cleaned_data["received"],
            actor=request.user,
        )
        obj.pk, obj.due_at, obj.subject_key = created.pk, created.due_at, created.subject_key

    def get_request_tools(self, request, obj) -> list[tuple[str, str]]:
        """(label, url) of further buttons on a request's page: the subject's overview, and
        what the request's kind asks for (export, erasure preview, restriction)."""
        if obj is None:
            return []
        # The row went (SET_NULL): its history may still hold the subject.
        if obj.subject_id is None and (not obj.subject_key or subject_get(obj.subject_key) is None):
            return []
        return subject_tools(
            request,
            self.admin_site,
            obj.subject_id or obj.subject_key,
            kind=obj.kind,
            request_id=obj.pk,
            answerable=obj.state in ANSWERABLE and bool(obj.verification_method),
            # A row recovered since under its key is no longer gone.
            gone=obj.subject_id is None and subject_gone(subject_get(obj.subject_key)),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        context = {
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "request_transitions": [],
            "request_tools": [],
            **(extra_context or {}),
        }
        if obj is not None and self.has_change_permission(request, obj):
            context["request_transitions"] = [
                (transition.label, self._url("transition", obj.pk, name))
                for name, transition in REQUEST_TRANSITIONS.items()
                if obj.state in transition.states and (name != "extend" or obj.can_extend)
            ]
        if obj is not None:
            context["request_tools"] = self.get_request_tools(request, obj)
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/transition/<slug:name>/",
                self.admin_site.admin_view(self.transition_view),
                name=f"{opts.app_label}_{opts.model_name}_transition",
            ),
            *super().get_urls(),
        ]

    def _url(self, view: str, pk, *args) -> str:
        opts = self.model._meta
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_{view}",
            args=[quote(pk), *args],
            current_app=self.admin_site.name,
        )

    def transition_view(self, request, object_id, name):
        """A transition's confirmation form; on a valid POST, its service and a message."""
        transition = REQUEST_TRANSITIONS.get(name)
        obj = self.get_object(request, unquote(object_id))
        if transition is None or obj is None:
            raise Http404("No such request or action.")
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        change_url = self._url("change", obj.pk)
        form = transition.form(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                transition.run(obj, request.user, form.cleaned_data)
            except ComplianceRefused as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, transition.done, messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{transition.label}: {obj}",
            "transition": transition,
            "form": form,
            "media": self.media + form.media,
            "opts": self.model._meta,
            "original": obj,
            "change_url": change_url,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.transition_template, context)


# Exports ---------------------------------------------------------------------------------


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
                       "size", "sha256", "counts", "expires_at"]  # fmt: skip
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


# Consents ------------------------------------------------------------------------------
# Below the mixin: registering builds the admin site, which imports the mixin from here.


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


# Erasure --------------------------------------------------------------------------------
# Registered last: registering builds the admin site, whose module imports the mixin above.


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
