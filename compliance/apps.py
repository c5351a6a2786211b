from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import checks, registry, roles  # noqa: F401

        registry.autodiscover()
        post_migrate.connect(roles.sync_after_migrate, sender=self)
