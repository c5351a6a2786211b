"""The two roles: "Privacy officer" runs the lifecycle, "Auditor" sees everything, changes nothing.

`sync_roles` creates the groups and sets their permissions. The data migration calls it
first; a post_migrate receiver calls it again so models added later get their permissions.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q

__all__ = ["AUDITOR", "OFFICER", "PROJECT_APPS", "sync_roles"]

AUDITOR = "Auditor"
OFFICER = "Privacy officer"
PROJECT_APPS = ("compliance", "retention", "versions", "shop")
# Models nobody changes through the admin: the ledger is append-only.
READ_ONLY_MODELS = Q(content_type__app_label="versions", content_type__model="ledgerentry")


def _role_filters():
    view = Q(codename__startswith="view_")
    history = Q(content_type__model__startswith="historical")
    officer = view | (Q(content_type__app_label__in=PROJECT_APPS) & ~history & ~READ_ONLY_MODELS)
    return {AUDITOR: view, OFFICER: officer}


def sync_roles(apps=global_apps, using=DEFAULT_DB_ALIAS) -> None:
    """Create both groups (idempotent) and set exactly their permissions."""
    for app_config in apps.get_app_configs():
        if not hasattr(app_config, "models_module"):
            # A migration's app configs are stubs without models_module; permissions need one.
            app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, condition in _role_filters().items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.set(Permission.objects.using(using).filter(condition))


def sync_after_migrate(sender, using=DEFAULT_DB_ALIAS, apps=global_apps, **kwargs):
    sync_roles(apps=apps, using=using)
