"""The two roles: "Privacy officer" runs the lifecycle, "Auditor" sees everything, changes nothing.

The roles are defined here, in code, where a change is reviewed: `sync_roles` creates both
groups and sets exactly their permissions. The data migration calls it, and so does a
post_migrate receiver, so new models get their permissions at the next migrate and edits
made to these two groups in the admin do not survive it. Other groups are left alone.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q

__all__ = ["AUDITOR", "OFFICER", "officer_apps", "sync_roles"]

AUDITOR = "Auditor"
OFFICER = "Privacy officer"
# The apps of this project; with them, officers edit every app the registry declares.
COMPLIANCE_APPS = ("compliance", "retention", "versions")
# Models nobody changes through the admin: the ledger is append-only.
READ_ONLY_MODELS = Q(content_type__app_label="versions", content_type__model="ledgerentry")


def officer_apps() -> set[str]:
    """Apps whose data officers may add and change: ours and every app in the registry."""
    from .registry import registry

    return {*COMPLIANCE_APPS, *(entry.model._meta.app_label for entry in registry.entries())}


def _role_filters():
    view = Q(codename__startswith="view_")
    # Deleting personal data is an erasure or a purge, with its own permission and ledger
    # entry; a plain admin delete would leave the data in history and no trace in the ledger.
    edit = Q(codename__startswith="add_") | Q(codename__startswith="change_")
    history = Q(content_type__model__startswith="historical")
    officer = view | (
        edit & Q(content_type__app_label__in=officer_apps()) & ~history & ~READ_ONLY_MODELS
    )
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
