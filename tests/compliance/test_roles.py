"""Roles: the auditor sees every admin page and can change nothing; officers cannot edit the
ledger."""

from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from compliance.registry import Category, ModelPrivacy, Personal, registry
from compliance.roles import AUDITOR, OFFICER, role_permissions, sync_roles
from shop.models import Customer
from versions.models import LedgerEntry


@pytest.fixture
def demo(db):
    """A few customers with rows in every table, and a ledger entry."""
    with override_settings(DEMO=True):
        call_command("seed_demo", customers=3, no_logins=True, stdout=StringIO())


def _admin_urls():
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        yield model, model_admin, f"admin:{opts.app_label}_{opts.model_name}"


SHOP_MODELS = [
    "customer",
    "session",
    "order",
    "message",
    "notification",
    "notificationpreference",
    "analyticsevent",
    "document",
    "passwordresettoken",
]
# What each role holds in this project: written out, not computed, so a change shows here.
SOFT_DELETE_MODELS = ["customer", "document"]
RETENTION_MODELS = [
    "retentionpolicy",
    "historicalretentionpolicy",
    "legalhold",
    "historicallegalhold",
    "purgerun",
]
CONSENT_MODELS = [
    "consentpurpose",
    "historicalconsentpurpose",
    "consenttext",
    "historicalconsenttext",
    "consentevent",
    "consentstate",
    "historicalconsentstate",
]
AUDITOR_PERMISSIONS = {
    "versions.view_ledgerentry",
    "versions.view_ledgercheckpoint",
    "operations.view_backup",
    "operations.view_erasurereplaymatch",
    "compliance.view_subjectrequest",
    "compliance.view_historicalsubjectrequest",
    "compliance.view_subjectexport",
    "compliance.view_requestmessage",
    *(f"compliance.view_{m}" for m in CONSENT_MODELS),
    "compliance.view_erasurecertificate",
    *(f"retention.view_{m}" for m in RETENTION_MODELS),
    *(f"shop.view_{m}" for m in SHOP_MODELS),
    *(f"shop.view_historical{m}" for m in SHOP_MODELS),
    *(f"shop.view_deleted_{m}" for m in SOFT_DELETE_MODELS),
}
OFFICER_PERMISSIONS = {
    *AUDITOR_PERMISSIONS,
    *(f"shop.add_{m}" for m in SHOP_MODELS),
    *(f"shop.change_{m}" for m in SHOP_MODELS),
    *(f"shop.delete_{m}" for m in SOFT_DELETE_MODELS),
    *(f"shop.hard_delete_{m}" for m in SOFT_DELETE_MODELS),
    "retention.add_retentionpolicy",
    "retention.change_retentionpolicy",
    "retention.run_purge_retentionpolicy",
    "retention.add_legalhold",
    "retention.change_legalhold",
    "compliance.add_subjectrequest",
    "compliance.change_subjectrequest",
    "compliance.add_subjectexport",
    "compliance.download_subjectexport",
    "compliance.release_subjectexport",
    "compliance.add_consentpurpose",
    "compliance.change_consentpurpose",
    "compliance.add_consenttext",
    "compliance.change_consenttext",
    "compliance.add_consentevent",
    "compliance.run_erasure_erasurecertificate",
    "operations.run_backup_backup",
}


def _group_permissions(name):
    return {
        f"{app}.{codename}"
        for app, codename in Group.objects.get(name=name).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def test_roles_hold_exactly_the_listed_permissions(db):
    """After migrate the officer and auditor groups hold exactly the listed permissions."""
    assert _group_permissions(AUDITOR) == AUDITOR_PERMISSIONS
    assert _group_permissions(OFFICER) == OFFICER_PERMISSIONS


def test_role_permissions_name_only_existing_permissions(db):
    """Every permission the code grants exists, so none is silently dropped by the sync."""
    granted = {f"{app}.{code}" for pairs in role_permissions().values() for app, code in pairs}
    assert granted == OFFICER_PERMISSIONS


def test_data_migration_creates_the_roles(db):
    """The migration's own function recreates the groups with their permissions."""
    import importlib

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("compliance.migrations.0001_roles")
    editor = SimpleNamespace(connection=connection)  # the functions only read its alias
    Group.objects.filter(name__in=[AUDITOR, OFFICER]).delete()
    migration.create_roles(apps, editor)
    assert Group.objects.get(name=AUDITOR).permissions.filter(codename="view_customer").exists()
    assert Group.objects.get(name=OFFICER).permissions.filter(codename="change_customer").exists()
    migration.remove_roles(apps, editor)
    assert not Group.objects.filter(name__in=[AUDITOR, OFFICER]).exists()


def test_migrate_resets_the_roles_but_not_other_groups(db):
    """The two roles are defined in code: migrate restores them; other groups are untouched."""
    officer = Group.objects.get(name=OFFICER)
    officer.permissions.remove(*officer.permissions.filter(codename="change_order"))
    helpdesk = Group.objects.create(name="Helpdesk")
    helpdesk.permissions.add(*officer.permissions.filter(codename="view_order"))
    sync_roles()
    assert officer.permissions.filter(codename="change_order").exists()
    assert list(helpdesk.permissions.values_list("codename", flat=True)) == ["view_order"]


def _may_view(user, model):
    return user.has_perm(f"{model._meta.app_label}.view_{model._meta.model_name}")


def test_auditor_sees_every_listed_changelist(auditor_client, auditor, demo):
    """The list page of each model the auditor may view opens without bulk actions; the
    others (users, groups, schedules) are refused."""
    viewable = 0
    for model, _model_admin, name in _admin_urls():
        response = auditor_client.get(reverse(f"{name}_changelist"))
        if not _may_view(auditor, model):
            assert response.status_code == 403, name
            continue
        viewable += 1
        assert response.status_code == 200, name
        assert b'name="action"' not in response.content, f"{name} offers actions"
    # the shop, the ledger and its checkpoints, policies, holds, runs, requests, exports,
    # consent purposes, texts, states and events, erasure certificates, backups, erasure
    # replay matches
    assert viewable == len(SHOP_MODELS) + 14


def test_auditor_cannot_add_change_or_delete_anything(auditor_client, auditor, demo):
    """Add, change (POST) and delete return 403 on every registered model."""
    for model, _model_admin, name in _admin_urls():
        assert auditor_client.get(reverse(f"{name}_add")).status_code == 403, name
        obj = model._default_manager.first()
        if obj is None:
            continue
        change = reverse(f"{name}_change", args=[obj.pk])
        page = auditor_client.get(change)
        if _may_view(auditor, model):
            assert page.status_code == 200, name
            assert b'name="_save"' not in page.content, f"{name} offers Save"
        else:
            assert page.status_code == 403, name
        assert auditor_client.post(change, {}).status_code == 403, name
        delete = reverse(f"{name}_delete", args=[obj.pk])
        assert auditor_client.get(delete).status_code == 403, name
        assert auditor_client.post(delete, {"post": "yes"}).status_code == 403, name
    assert Customer.objects.count() == 3


def test_auditor_reads_history_but_cannot_revert(auditor_client, demo):
    """History pages open; reverting to a version is refused."""
    customer = Customer.objects.first()
    history = reverse("admin:shop_customer_history", args=[customer.pk])
    assert auditor_client.get(history).status_code == 200
    version = customer.history.earliest()
    url = reverse("admin:shop_customer_simple_history", args=[customer.pk, version.pk])
    page = auditor_client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    before = customer.history.count()
    assert auditor_client.post(url, {"full_name": "Changed"}).status_code == 403
    assert customer.history.count() == before


def test_nobody_reverts_through_the_history_form_yet(officer_client, demo):
    """Until restore is a service with its own checks and ledger entry, the form is read-only."""
    customer = Customer.objects.first()
    version = customer.history.earliest()
    url = reverse("admin:shop_customer_simple_history", args=[customer.pk, version.pk])
    assert officer_client.get(url).status_code == 200
    data = {"email": customer.email, "full_name": "Reverted", "phone": "", "avatar_url": ""}
    assert officer_client.post(url, data).status_code == 403
    customer.refresh_from_db()
    assert customer.full_name != "Reverted"


def test_nobody_edits_the_ledger_in_the_admin(officer_client, demo, admin_client):
    """Officers and even superusers get 403 on add, change and delete of ledger entries."""
    entry = LedgerEntry.objects.first()
    for client in (officer_client, admin_client):
        assert client.get(reverse("admin:versions_ledgerentry_changelist")).status_code == 200
        assert client.get(reverse("admin:versions_ledgerentry_add")).status_code == 403
        change = reverse("admin:versions_ledgerentry_change", args=[entry.pk])
        assert client.post(change, {"target": "x"}).status_code == 403
        delete = reverse("admin:versions_ledgerentry_delete", args=[entry.pk])
        assert client.post(delete, {"post": "yes"}).status_code == 403


def test_ledger_checkpoints_are_read_only_for_everyone(auditor_client, officer_client, demo):
    """Auditors and officers see the ledger's signed heads (when it was last verified);
    nobody adds, changes or deletes one."""
    from versions.models import LedgerCheckpoint

    checkpoint = LedgerCheckpoint.objects.first()
    change = reverse("admin:versions_ledgercheckpoint_change", args=[checkpoint.pk])
    for client in (auditor_client, officer_client):
        page = client.get(reverse("admin:versions_ledgercheckpoint_changelist"))
        assert page.status_code == 200 and checkpoint.head[:12].encode() in page.content
        assert client.get(change).status_code == 200
        assert client.get(reverse("admin:versions_ledgercheckpoint_add")).status_code == 403
        assert client.post(change, {"head": "0" * 64}).status_code == 403
        delete = reverse("admin:versions_ledgercheckpoint_delete", args=[checkpoint.pk])
        assert client.post(delete, {"post": "yes"}).status_code == 403
    assert LedgerCheckpoint.objects.get(pk=checkpoint.pk).head == checkpoint.head


def test_officer_edits_customers(officer_client, demo):
    """The officer role can change personal data (and so history records it)."""
    customer = Customer.objects.first()
    page = officer_client.get(reverse("admin:shop_customer_change", args=[customer.pk]))
    assert page.status_code == 200 and b'name="_save"' in page.content


@pytest.fixture
def users_are_subjects(db):
    """auth.User registered as the data subject, and the roles synced with it."""

    class UserPrivacy(ModelPrivacy):
        subject = "pk"
        fields = {"email": Personal(Category.CONTACT, anonymiser="email_placeholder")}

    with override_settings(COMPLIANCE_SUBJECT_MODEL="auth.User"):
        registry.register(User, UserPrivacy)
        try:
            sync_roles()
            yield
        finally:
            registry.unregister(User)
            sync_roles()


def test_registering_auth_user_gives_officers_nothing_of_auth(users_are_subjects, officer):
    """Whatever the registry holds, neither role gets a permission of auth or contenttypes."""
    for role in (OFFICER, AUDITOR):
        assert not {p for p in _group_permissions(role) if p.startswith(("auth.", "contenttypes."))}
    assert _group_permissions(OFFICER) == OFFICER_PERMISSIONS
    officer = User.objects.get(pk=officer.pk)  # a fresh permission cache
    assert not [p for p in officer.get_all_permissions() if p.startswith("auth.")]


def test_officer_cannot_change_users_groups_or_permissions(
    users_are_subjects, officer_client, officer
):
    """With auth.User as the subject, the admin refuses (403) every way to more power."""
    user_change = reverse("admin:auth_user_change", args=[officer.pk])
    assert officer_client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert officer_client.get(user_change).status_code == 403
    data = {
        "username": "officer",
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "date_joined_0": "2024-01-01",
        "date_joined_1": "00:00:00",
    }
    assert officer_client.post(user_change, data).status_code == 403
    assert officer_client.post(reverse("admin:auth_user_add"), {}).status_code == 403
    group = Group.objects.get(name=OFFICER)
    everything = list(Permission.objects.values_list("pk", flat=True))
    group_change = reverse("admin:auth_group_change", args=[group.pk])
    assert officer_client.get(group_change).status_code == 403
    response = officer_client.post(group_change, {"name": OFFICER, "permissions": everything})
    assert response.status_code == 403
    officer.refresh_from_db()
    assert not officer.is_superuser
    assert _group_permissions(OFFICER) == OFFICER_PERMISSIONS
