"""The two roles: "Privacy officer" runs the lifecycle, "Auditor" reads and changes nothing.

Each role's permissions are an explicit list per model, here in code where a change is
reviewed; nothing is granted by app label:

- the project's own models (compliance, operations, retention, versions) give exactly what
  `PROJECT_MODELS` lists; a new model of those apps gives nobody anything until it is listed;
- each model of the personal-data registry gives both roles `view` on the model and on its
  history, and officers `add` and `change` (deleting personal data is an erasure or a purge,
  with its own permission and ledger entry); a soft-delete model adds `view_deleted` for
  both, and for officers `delete` (which hides rows) and `hard_delete`;
- the apps that hold accounts, permissions and sessions (`FORBIDDEN_APPS`) and the user
  model give neither role anything, whatever the registry holds: an officer who could
  change users, groups or permissions could make themselves superuser.

`sync_roles` creates both groups and sets exactly these permissions. The data migration
calls it, and so does a post_migrate receiver, so a newly registered model gets its
permissions at the next migrate. Edits made to these two groups in the admin do not survive
it: give people more through a group of your own (other groups are left alone).
"""

from django.apps import apps as global_apps
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q

from retention.softdelete import is_soft_delete_model

from .registry import registry

__all__ = [
    "AUDITOR",
    "FORBIDDEN_APPS",
    "OFFICER",
    "PROJECT_MODELS",
    "role_permissions",
    "sync_roles",
]

AUDITOR = "Auditor"
OFFICER = "Privacy officer"
VIEW = ("view",)
EDIT = ("view", "add", "change")

SOFT_DELETE = ("view_deleted",)
SOFT_DELETE_EDIT = ("view_deleted", "delete", "hard_delete")

# The project's own models, "app_label.modelname": the actions each role gets. The ledger and
# the purge run log are append-only: everyone reads them, nobody edits them in the admin.
# Holds are placed (add) and released (change), never deleted.
PROJECT_MODELS: dict[str, dict[str, tuple[str, ...]]] = {
    "versions.ledgerentry": {AUDITOR: VIEW, OFFICER: VIEW},
    "versions.ledgercheckpoint": {AUDITOR: VIEW, OFFICER: VIEW},
    # Backups: officers start, verify and drill them; nobody edits the catalogue. Their
    # checks are shown on the backup's page (no permissions of their own).
    "operations.backup": {AUDITOR: VIEW, OFFICER: (*VIEW, "run_backup")},
    # Subjects an erasure replay matched by an email alone: officers confirm or dismiss
    # them with the erasure permission; nobody edits them.
    "operations.erasurereplaymatch": {AUDITOR: VIEW, OFFICER: VIEW},
    "retention.retentionpolicy": {AUDITOR: VIEW, OFFICER: (*EDIT, "run_purge")},
    "retention.historicalretentionpolicy": {AUDITOR: VIEW, OFFICER: VIEW},
    "retention.legalhold": {AUDITOR: VIEW, OFFICER: EDIT},
    "retention.historicallegalhold": {AUDITOR: VIEW, OFFICER: VIEW},
    "retention.purgerun": {AUDITOR: VIEW, OFFICER: VIEW},
    # Requests are recorded and moved through their states, never deleted: they are the
    # record of how each request was handled.
    "compliance.subjectrequest": {AUDITOR: VIEW, OFFICER: EDIT},
    "compliance.historicalsubjectrequest": {AUDITOR: VIEW, OFFICER: VIEW},
    # Exports: officers run (add), download and release them (the person gets a link to
    # their copy); auditors see that they happened.
    "compliance.subjectexport": {AUDITOR: VIEW, OFFICER: ("view", "add", "download", "release")},
    # Messages to the requester are written from the request's page (with the request's
    # change permission) and never edited.
    "compliance.requestmessage": {AUDITOR: VIEW, OFFICER: VIEW},
    # Consents: officers keep purposes and texts (a consented text is locked by the model)
    # and record grants and withdrawals (add an event); events and states are written only
    # by consent_record, so nobody changes them in the admin.
    "compliance.consentpurpose": {AUDITOR: VIEW, OFFICER: EDIT},
    "compliance.historicalconsentpurpose": {AUDITOR: VIEW, OFFICER: VIEW},
    "compliance.consenttext": {AUDITOR: VIEW, OFFICER: EDIT},
    "compliance.historicalconsenttext": {AUDITOR: VIEW, OFFICER: VIEW},
    "compliance.consentevent": {AUDITOR: VIEW, OFFICER: ("view", "add")},
    "compliance.consentstate": {AUDITOR: VIEW, OFFICER: VIEW},
    "compliance.historicalconsentstate": {AUDITOR: VIEW, OFFICER: VIEW},
    # Certificates are written by erasures only; officers run them, auditors read them.
    "compliance.erasurecertificate": {AUDITOR: VIEW, OFFICER: (*VIEW, "run_erasure")},
}
# Apps whose permissions no role gets, even when one of their models is registered.
FORBIDDEN_APPS = frozenset({"auth", "contenttypes", "admin", "sessions"})
_PROJECT_APPS = frozenset({"compliance", "operations", "retention", "versions"})


def _forbidden(app_label: str, model_name: str) -> bool:
    user_app, user_model = settings.AUTH_USER_MODEL.lower().split(".")
    return app_label in FORBIDDEN_APPS or (app_label, model_name) == (user_app, user_model)


def _history_model(model):
    from simple_history.exceptions import NotHistoricalModelError
    from simple_history.utils import get_history_model_for_model

    try:
        return get_history_model_for_model(model)
    except NotHistoricalModelError:
        return None


def role_permissions() -> dict[str, set[tuple[str, str]]]:
    """Each role's permissions as (app_label, codename) pairs."""
    grants: dict[str, set[tuple[str, str]]] = {AUDITOR: set(), OFFICER: set()}

    def grant(role, app_label, model_name, actions):
        grants[role].update((app_label, f"{action}_{model_name}") for action in actions)

    for label, roles in PROJECT_MODELS.items():
        app_label, model_name = label.split(".")
        for role, actions in roles.items():
            grant(role, app_label, model_name, actions)
    for entry in registry.entries():
        opts = entry.model._meta
        if opts.app_label in _PROJECT_APPS or _forbidden(opts.app_label, opts.model_name):
            continue  # listed in PROJECT_MODELS, or nobody's
        grant(AUDITOR, opts.app_label, opts.model_name, VIEW)
        grant(OFFICER, opts.app_label, opts.model_name, EDIT)
        if is_soft_delete_model(entry.model):
            grant(AUDITOR, opts.app_label, opts.model_name, SOFT_DELETE)
            grant(OFFICER, opts.app_label, opts.model_name, SOFT_DELETE_EDIT)
        history = _history_model(entry.model)
        if history is not None:
            for role in grants:
                grant(role, history._meta.app_label, history._meta.model_name, VIEW)
    return grants


def sync_roles(apps=global_apps, using=DEFAULT_DB_ALIAS) -> None:
    """Create both groups (idempotent) and set exactly their permissions."""
    for app_config in apps.get_app_configs():
        if not hasattr(app_config, "models_module"):
            # A migration's app configs are stubs without models_module; permissions need one.
            app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, pairs in role_permissions().items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        condition = Q(pk__in=[])
        for app_label, codename in pairs:
            condition |= Q(content_type__app_label=app_label, codename=codename)
        group.permissions.set(Permission.objects.using(using).filter(condition))


def sync_after_migrate(sender, using=DEFAULT_DB_ALIAS, apps=global_apps, **kwargs):
    sync_roles(apps=apps, using=using)
