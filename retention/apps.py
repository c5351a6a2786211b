from django.apps import AppConfig


class RetentionConfig(AppConfig):
    """Soft delete now; retention policies, legal holds and the purge engine to come."""

    name = "retention"
    verbose_name = "Retention"

    def ready(self):
        from compliance.registry import autodiscover

        from . import checks  # noqa: F401  (system checks)
        from .holds import restriction_connect
        from .models import RetentionPolicy
        from .selectors import policy_validate

        autodiscover()  # done already when compliance is installed first; then a no-op
        restriction_connect()
        RetentionPolicy.validator = staticmethod(policy_validate)
