from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self):
        from django.db.models.signals import post_migrate

        from versions.subjects import subjects_register

        from . import checks, registry, roles, selectors  # noqa: F401

        registry.autodiscover()
        # Record versions (a layer below) ask these about data subjects.
        subjects_register(find=selectors.subject_find, erased=selectors.subjects_erased)
        post_migrate.connect(roles.sync_after_migrate, sender=self)
