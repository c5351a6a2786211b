"""System checks of the versions app."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def ledger_secret_check(app_configs, **kwargs):
    """versions.W001: the ledger should have its own key, not SECRET_KEY."""
    if getattr(settings, "LEDGER_SECRET", ""):
        return []
    return [
        Warning(
            "LEDGER_SECRET is not set: the ledger's hash chain is keyed with SECRET_KEY.",
            hint="Set LEDGER_SECRET to a long random value and never change it; rotating "
            "SECRET_KEY would otherwise make verify_ledger report every entry as altered.",
            id="versions.W001",
        )
    ]
