from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self):
        from retention.holds import holdable_register

        from .models import Backup

        # A legal hold may name a backup; cleanup spares it (operations.backups).
        holdable_register(Backup)
