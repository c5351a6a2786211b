from django.apps import AppConfig


class RetentionConfig(AppConfig):
    """Soft delete, retention policies, legal holds and the purge engine (to come)."""

    name = "retention"
    verbose_name = "Retention"
