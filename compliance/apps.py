from django.apps import AppConfig
from django.apps import apps as global_apps


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import checks, registry, roles  # noqa: F401

        registry.autodiscover()
        if global_apps.is_installed("django.contrib.admin"):
            # After the admin's autodiscovery: the site imports compliance/admin.py itself.
            from . import request_admin

            request_admin.register()
        post_migrate.connect(roles.sync_after_migrate, sender=self)
