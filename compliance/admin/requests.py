"""Admin of data-subject requests: the list with its deadline filter, the add form and the
transitions (verify, start, extend, complete, reject), each a confirmation page."""

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import widgets
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst

from versions.admin import TrackedHistoryAdmin

from ..models import SubjectRequest
from ..registry import registry
from ..selectors import (
    DUE_SOON_DAYS,
    SubjectAmbiguous,
    request_awaiting_download_q,
    request_awaiting_release_q,
    request_due_soon_q,
    request_overdue_q,
    request_release_export,
    request_search_q,
    request_steps,
    subject_find,
    subject_get,
    subject_gone,
)
from ..services import (
    ANSWERABLE,
    ComplianceRefused,
    request_complete,
    request_create,
    request_extend,
    request_reject,
    request_start,
    request_verify,
)
from ..services.delivery import RELEASE_PERMISSION, request_release
from ..services.messages import MESSAGE_MAX_LENGTH, request_message_send
from ..sites import subject_tools
from .common import _step_label, _when


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


class DeliveryFilter(admin.SimpleListFilter):
    """Access requests whose copy waits for an officer's release, or for the person's
    download."""

    title = "delivery of the copy"
    parameter_name = "delivery"
    AWAITING_RELEASE, AWAITING_DOWNLOAD = "awaiting_release", "awaiting_download"

    def lookups(self, request, model_admin):
        return [
            (self.AWAITING_RELEASE, "Awaiting release"),
            (self.AWAITING_DOWNLOAD, "Awaiting download"),
        ]

    def queryset(self, request, queryset):
        if self.value() == self.AWAITING_RELEASE:
            return queryset.filter(request_awaiting_release_q())
        if self.value() == self.AWAITING_DOWNLOAD:
            return queryset.filter(request_awaiting_download_q())
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


class MessageForm(forms.Form):
    body = forms.CharField(
        label="Message (emailed to the requester and shown on their status page)",
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60}),
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
    run: Callable  # (request, actor, cleaned_data) -> the service's result
    done: str
    #: Whether the button shows for (request, user) beyond its states; None: always.
    shown: Callable | None = None


_State = SubjectRequest.State
_OPEN = (_State.RECEIVED, _State.VERIFIED, _State.IN_PROGRESS)


def _releasable(obj, user) -> bool:
    export = request_release_export(obj) if obj.kind == SubjectRequest.Kind.ACCESS else None
    return user.has_perm(RELEASE_PERMISSION) and export is not None and export.released_at is None


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
        shown=lambda obj, user: obj.can_extend,
    ),
    "release": RequestTransition(
        label="Release the copy",
        question="Email the requester a link to download their copy (the request's latest "
        "finished export). The link is valid for COMPLIANCE_DOWNLOAD_LINK_DAYS days (7 by "
        "default), asks for a fresh emailed code before each download, and the copy is "
        "deleted when it expires. The request completes on the first download, or at expiry "
        "as expired without download.",
        form=ReasonForm,
        states=(_State.IN_PROGRESS,),
        run=lambda obj, actor, data: request_release(
            request=obj, actor=actor, absolute_url=data["absolute_url"], reason=data["reason"]
        ),
        done="Copy released.",
        shown=_releasable,
    ),
    "message": RequestTransition(
        label="Write to the requester",
        question="Write a message to the person who made this request: it is emailed to the "
        "address they gave and shown on their status page. The ledger records that it was "
        "sent, not its text.",
        form=MessageForm,
        states=(*_OPEN, _State.COMPLETED, _State.REJECTED),
        run=lambda obj, actor, data: request_message_send(
            request=obj, actor=actor, body=data["body"]
        ),
        done="Message sent to the requester.",
        shown=lambda obj, user: bool(getattr(obj, "contact_email", "")),
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
    list_display = [
        "__str__",
        "due",
        "state",
        "kind",
        "channel",
        "jurisdiction",
        "about",
        "received_at",
    ]
    list_filter = [DeadlineFilter, DeliveryFilter, "state", "kind", "channel", "jurisdiction"]
    list_select_related = ["subject"]
    search_fields = ["subject_key"]
    search_help_text = "The subject's email or id."
    raw_id_fields = ["subject"]
    ordering = ["due_at", "pk"]
    change_form_template = "admin/compliance/subjectrequest/change_form.html"
    transition_template = "admin/compliance/subjectrequest/transition.html"
    fieldsets = [
        (None, {"fields": ["kind", "subject", "subject_key", "jurisdiction", "state"]}),
        ("Channel", {"fields": ["channel", "contact_email", "details"]}),
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
            {
                "fields": [
                    "verification_method",
                    "verified_at",
                    "verified_ip",
                    "verified_by",
                    "verification_note",
                ]
            },
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
        ("Delivery of the copy", {"fields": ["outcome", "delivery"]}),
        ("Messages to the requester", {"fields": ["messages_sent"]}),
    ]

    @admin.display(description="delivery")
    def delivery(self, obj):
        """Each released export: when, by whom, until when, and how often it was downloaded."""
        released = obj.exports.filter(released_at__isnull=False).select_related("released_by")
        rows = [
            (
                str(export),
                _when(export.released_at),
                str(export.released_by or "—"),
                _when(export.expires_at),
                export.downloads,
            )
            for export in released
        ]
        if not rows:
            return "Not released."
        return format_html(
            "<table><thead><tr><th>Export</th><th>Released</th><th>By</th><th>Link valid "
            "until</th><th>Downloads by the requester</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
            ),
        )

    @admin.display(description="messages")
    def messages_sent(self, obj):
        """The messages officers wrote to the requester, oldest first."""
        rows = [
            (_when(message.created_at), str(message.author or "—"), message.body)
            for message in obj.messages.select_related("author")
        ]
        if not rows:
            return "—"
        return format_html(
            "<table><thead><tr><th>When</th><th>By</th><th>Message</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            format_html_join(
                "",
                '<tr><td>{}</td><td>{}</td><td style="white-space: pre-wrap">{}</td></tr>',
                rows,
            ),
        )

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
                if obj.state in transition.states
                and (transition.shown is None or transition.shown(obj, request.user))
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
                data = {**form.cleaned_data, "absolute_url": request.build_absolute_uri}
                result = transition.run(obj, request.user, data)
            except ComplianceRefused as exc:
                form.add_error(None, str(exc))
            else:
                # A service that may do nothing (a second release) says so in its result.
                done = getattr(result, "released", True)
                self.message_user(
                    request,
                    getattr(result, "message", transition.done),
                    messages.SUCCESS if done else messages.WARNING,
                )
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
