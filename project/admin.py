"""The admin site: the stock one, plus the compliance pages in the app list."""

from django.contrib import admin
from django.urls import path, reverse


class ComplianceAdminSite(admin.AdminSite):
    site_header = "Compliance administration"
    site_title = "Compliance"
    index_title = "Personal data, history and compliance"

    def get_urls(self):
        from compliance.admin import inventory_view

        return [
            path(
                "compliance/inventory/",
                self.admin_view(inventory_view),
                name="compliance_inventory",
            ),
            *super().get_urls(),
        ]

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label not in (None, "compliance"):
            return app_list
        app = next((a for a in app_list if a["app_label"] == "compliance"), None)
        if app is None:
            app = {
                "name": "Compliance",
                "app_label": "compliance",
                "app_url": reverse("admin:compliance_inventory", current_app=self.name),
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
                "admin_url": reverse("admin:compliance_inventory", current_app=self.name),
                "add_url": None,
                "view_only": True,
                "perms": {"view": True},
            },
        )
        return app_list
