from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """The stock admin app, with the project's site as the default site."""

    default_site = "compliance.sites.ComplianceAdminSite"


class ProjectConfig(AppConfig):
    """The project itself: its management commands (`migrate` with timeouts, `backfill`)."""

    name = "project"
    label = "project"
