"""The admin site: the stock one, plus the personal-data inventory in the app list, and the
registry's rules (ledgered deletes, read-only retention dates) on every model admin."""

import csv
from functools import update_wrapper

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse

from retention.holds import ProcessingRestricted
from retention.models import LegalHold
from retention.services import RetentionRefused, hold_place, hold_release
from versions.views import changes_view, viewable_tracked_models

from .admin_inputs import with_validated_inputs
from .forms import RestrictionForm, RestrictionLiftForm, SubjectSearchForm
from .models import SubjectRequest
from .registry import registry
from .registry_admin import with_registry_rules
from .selectors import (
    SubjectAmbiguous,
    inventory,
    subject_find,
    subject_get,
    subject_gone,
    subject_overview,
)
from .services import ERASE_PERMISSION

__all__ = ["ComplianceAdminSite", "subject_tools"]

CSV_COLUMNS = [
    "model", "subject path", "field", "category", "anonymiser", "exported",
    "erasure", "legal ground", "retention basis", "purpose", "lawful basis", "history",
]  # fmt: skip


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


class ComplianceAdminSite(admin.AdminSite):
    """Use as the default admin site (an AdminConfig with ``default_site`` pointing here)."""

    site_header = "Compliance administration"
    site_title = "Compliance"
    index_title = "Personal data, history and compliance"

    def register(self, model_or_iterable, admin_class=None, **options):
        """Register as usual, with `RegistryAdminMixin` and `ValidatedInputsAdminMixin` added
        to whatever admin class."""

        admin_class = with_registry_rules(with_validated_inputs(admin_class or admin.ModelAdmin))
        super().register(model_or_iterable, admin_class, **options)

    def admin_view(self, view, cacheable=False):
        """Every admin page, as usual; a change refused because processing is restricted
        (Art. 18: a restriction placed after the page was built and checked, or a path no
        page checks first) is the refusal's own message, back on the page, never a server
        error. The refused change is rolled back with the transaction that attempted it
        (every admin write is in one)."""

        def refusing(request, *args, **kwargs):
            try:
                return view(request, *args, **kwargs)
            except ProcessingRestricted as exc:
                messages.error(request, str(exc))
                return HttpResponseRedirect(request.get_full_path())

        return super().admin_view(update_wrapper(refusing, view), cacheable)

    def get_urls(self):
        return [
            path(
                "compliance/inventory/",
                self.admin_view(self.inventory_view),
                name="compliance_inventory",
            ),
            path(
                "versions/changes/",
                self.admin_view(self.changes_view),
                name="versions_changes",
            ),
            path(
                "compliance/subjects/",
                self.admin_view(self.subject_search_view),
                name="compliance_subject_search",
            ),
            path(
                "compliance/subjects/<str:subject_id>/",
                self.admin_view(self.subject_overview_view),
                name="compliance_subject_overview",
            ),
            path(
                "compliance/subjects/<str:subject_id>/restrict/",
                self.admin_view(self.subject_restrict_view),
                name="compliance_subject_restrict",
            ),
            path(
                "compliance/restrictions/<int:hold_id>/lift/",
                self.admin_view(self.restriction_lift_view),
                name="compliance_restriction_lift",
            ),
            *super().get_urls(),
        ]

    def changes_view(self, request):
        return changes_view(request, self)

    # Data subjects --------------------------------------------------------------------

    def can_view_subjects(self, request) -> bool:
        """Whoever may view the subject model may see what is held about a subject."""
        opts = registry.subject_model()._meta
        return request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}")

    def _subject(self, request, subject_id):
        if not self.can_view_subjects(request):
            raise PermissionDenied
        subject = subject_get(subject_id)  # a subject whose row is gone: its history rows
        if subject is None:
            name = registry.subject_model()._meta.verbose_name
            raise Http404(f"No {name} with id {subject_id!r}.")
        return subject

    def subject_search_view(self, request):
        """Find a data subject by email or id, then open their overview."""
        if not self.can_view_subjects(request):
            raise PermissionDenied
        # Posted, never in the address: the term is an email (contract 8).
        form = SubjectSearchForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                subject = subject_find(form.cleaned_data["q"])
            except SubjectAmbiguous as exc:
                form.add_error("q", str(exc))
            else:
                if subject is not None:
                    return HttpResponseRedirect(self._overview_url(subject.pk))
                form.add_error(
                    "q",
                    f"No {registry.subject_model()._meta.verbose_name} has this email or id.",
                )
        context = {
            **self.each_context(request),
            "title": "Find a data subject",
            "form": form,
            "subject_opts": registry.subject_model()._meta,
        }
        return TemplateResponse(request, "admin/compliance/subject_search.html", context)

    def _overview_url(self, subject_id) -> str:
        return reverse(
            "admin:compliance_subject_overview", args=[subject_id], current_app=self.name
        )

    def subject_overview_view(self, request, subject_id):
        """Everything the registry finds about one person, with links, holds and history."""
        subject = self._subject(request, subject_id)
        overview = subject_overview(subject)
        context = {
            **self.each_context(request),
            "title": f"Data subject: {subject}",
            "overview": overview,
            "subject_opts": type(subject)._meta,
            "sections": [
                (model, [(row, self._change_url(row)) for row in model.rows])
                for model in overview.models
            ],
            "tools": self._subject_tools(request, subject),
            "gone": subject_gone(subject),
            "can_lift": request.user.has_perm("retention.change_legalhold"),
        }
        return TemplateResponse(request, "admin/compliance/subject_overview.html", context)

    def _subject_tools(self, request, subject):
        overview = self._overview_url(subject.pk)
        tools = subject_tools(request, self, subject.pk, gone=subject_gone(subject))
        return [tool for tool in tools if tool[1] != overview]

    def _change_url(self, row) -> str | None:
        """The row's admin page, None when it has no admin."""
        opts = row._meta
        try:
            return reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change",
                args=[row.pk],
                current_app=self.name,
            )
        except NoReverseMatch:
            return None

    def subject_restrict_view(self, request, subject_id):
        """Restrict the processing of a subject's data (Art. 18)."""
        subject = self._subject(request, subject_id)
        if not request.user.has_perm("retention.add_legalhold"):
            raise PermissionDenied
        form = RestrictionForm(request.POST or None)
        if form.is_valid():
            try:
                hold_place(record=subject, actor=request.user, **form.cleaned_data)
            except RetentionRefused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    f"Processing of {subject} is restricted: their rows are kept out of "
                    "purges and erasures, and changes to them need a reason.",
                )
                return HttpResponseRedirect(self._overview_url(subject.pk))
        context = {
            **self.each_context(request),
            "title": f"Restrict processing of {subject}",
            "subject": subject,
            "subject_opts": type(subject)._meta,
            "form": form,
            "overview_url": self._overview_url(subject.pk),
        }
        return TemplateResponse(request, "admin/compliance/restriction_form.html", context)

    def restriction_lift_view(self, request, hold_id):
        """Lift a restriction: a confirmation with a reason, then a ledger entry."""
        if not request.user.has_perm("retention.change_legalhold"):
            raise PermissionDenied
        hold = get_object_or_404(LegalHold, pk=hold_id, released_at__isnull=True)
        if not hold.is_restriction:
            raise Http404("Not an active restriction.")
        subject_model = registry.subject_model()
        subject_id = hold.object_id if hold.content_type.model_class() is subject_model else None
        form = RestrictionLiftForm(request.POST or None)
        if form.is_valid():
            try:
                hold_release(hold=hold, reason=form.cleaned_data["reason"], actor=request.user)
            except RetentionRefused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "The restriction is lifted.")
                return HttpResponseRedirect(
                    self._overview_url(subject_id) if subject_id else reverse("admin:index")
                )
        context = {
            **self.each_context(request),
            "title": "Lift the restriction",
            "hold": hold,
            "form": form,
            "overview_url": self._overview_url(subject_id) if subject_id else None,
        }
        return TemplateResponse(request, "admin/compliance/restriction_lift.html", context)

    def can_view_inventory(self, request) -> bool:
        """Whoever may view a model of the registry may see how the registry classifies it."""
        return any(
            request.user.has_perm(f"{e.model._meta.app_label}.view_{e.model._meta.model_name}")
            for e in registry.entries()
        )

    def inventory_view(self, request):
        """Personal-data inventory: every registered model, its fields and their handling."""
        if not self.can_view_inventory(request):
            raise PermissionDenied
        rows = inventory()
        if request.GET.get("format") == "csv":
            return _inventory_csv(rows)
        context = {
            **self.each_context(request),
            "title": "Personal-data inventory",
            "rows": rows,
            "field_count": sum(len(row.fields) for row in rows),
        }
        return TemplateResponse(request, "admin/compliance/inventory.html", context)

    def get_app_list(self, request, app_label=None):
        """The stock list, with the site's own pages first in their app."""
        app_list = super().get_app_list(request, app_label)
        pages = {"compliance": [], "versions": []}
        if self.can_view_inventory(request):
            pages["compliance"].append(("Personal-data inventory", "Inventory", "inventory"))
        if self.can_view_subjects(request):
            pages["compliance"].append(("Data subjects", "Subjects", "subject_search"))
        if viewable_tracked_models(request.user):
            pages["versions"].append(("All changes", "Changes", "changes"))
        for label, entries in pages.items():
            if app_label in (None, label) and entries:
                self._add_pages(app_list, label, entries)
        return app_list

    def _add_pages(self, app_list, app_label, entries):
        urls = [
            reverse(f"admin:{app_label}_{url_name}", current_app=self.name)
            for *_, url_name in entries
        ]
        app = next((a for a in app_list if a["app_label"] == app_label), None)
        if app is None:
            from django.apps import apps

            app = {
                "name": apps.get_app_config(app_label).verbose_name,
                "app_label": app_label,
                "app_url": urls[0],
                "has_module_perms": True,
                "models": [],
            }
            app_list.append(app)
            app_list.sort(key=lambda a: a["name"].lower())
        for position, ((name, object_name, _), url) in enumerate(zip(entries, urls, strict=True)):
            app["models"].insert(
                position,
                {
                    "name": name,
                    "object_name": object_name,
                    "admin_url": url,
                    "add_url": None,
                    "view_only": True,
                    "perms": {"view": True},
                },
            )


def _inventory_csv(rows):
    """One line per personal field; a model without personal fields still gets one line."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="personal-data-inventory.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        for field in row.fields or [None]:
            writer.writerow(
                [
                    row.label,
                    " / ".join(row.subject_paths),
                    field.name if field else "",
                    field.category if field else "",
                    field.anonymiser if field else "",
                    ("yes" if field.exported else "no") if field else "",
                    row.erasure,
                    row.legal_ground,
                    row.retention_basis,
                    row.purpose,
                    row.lawful_basis,
                    "yes" if row.history_tracked else "no",
                ]
            )
    return response
