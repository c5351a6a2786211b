"""The admin site: the stock one, plus the personal-data inventory in the app list, and the
registry's rules (ledgered deletes, read-only retention dates) on every model admin."""

import csv

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from .registry import registry
from .selectors import inventory

__all__ = ["ComplianceAdminSite"]

CSV_COLUMNS = [
    "model", "subject path", "field", "category", "anonymiser", "exported",
    "erasure", "legal ground", "retention basis", "purpose", "lawful basis", "history",
]  # fmt: skip


class ComplianceAdminSite(admin.AdminSite):
    """Use as the default admin site (an AdminConfig with ``default_site`` pointing here)."""

    site_header = "Compliance administration"
    site_title = "Compliance"
    index_title = "Personal data, history and compliance"

    def register(self, model_or_iterable, admin_class=None, **options):
        """Register as usual, with `RegistryAdminMixin` added to whatever admin class."""
        # Imported here: the compliance app's admin module registers on this site.
        from .admin import with_registry_rules

        admin_class = with_registry_rules(admin_class or admin.ModelAdmin)
        super().register(model_or_iterable, admin_class, **options)

    def get_urls(self):
        return [
            path(
                "compliance/inventory/",
                self.admin_view(self.inventory_view),
                name="compliance_inventory",
            ),
            *super().get_urls(),
        ]

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
        app_list = super().get_app_list(request, app_label)
        if app_label not in (None, "compliance") or not self.can_view_inventory(request):
            return app_list
        url = reverse("admin:compliance_inventory", current_app=self.name)
        app = next((a for a in app_list if a["app_label"] == "compliance"), None)
        if app is None:
            app = {
                "name": "Compliance",
                "app_label": "compliance",
                "app_url": url,
                "has_module_perms": True,
                "models": [],
            }
            app_list.append(app)
            app_list.sort(key=lambda a: a["name"].lower())
        app["models"].insert(
            0,
            {
                "name": "Personal-data inventory",
                "object_name": "Inventory",
                "admin_url": url,
                "add_url": None,
                "view_only": True,
                "perms": {"view": True},
            },
        )
        return app_list


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
