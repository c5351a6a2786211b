from django.apps import AppConfig


class VersionsConfig(AppConfig):
    name = "versions"
    verbose_name = "History and ledger"

    def ready(self):
        from . import checks, history, tasks  # noqa: F401  (signal receivers, checks)
