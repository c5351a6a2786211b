from django.apps import AppConfig


class RetentionConfig(AppConfig):
    """Soft delete now; retention policies, legal holds and the purge engine to come."""

    name = "retention"
    verbose_name = "Retention"

    def ready(self):
        from . import checks  # noqa: F401  (system checks)
