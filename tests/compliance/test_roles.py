"""Roles: the auditor sees every admin page and can change nothing; officers cannot edit the
ledger."""

from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from compliance.roles import AUDITOR, OFFICER
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


def test_roles_exist_after_migrate(db):
    """The data migration (and post_migrate) created both groups with permissions."""
    auditor = Group.objects.get(name=AUDITOR)
    officer = Group.objects.get(name=OFFICER)
    codenames = set(auditor.permissions.values_list("codename", flat=True))
    assert codenames and all(c.startswith("view_") for c in codenames)
    assert {"view_customer", "view_ledgerentry", "view_historicalcustomer"} <= codenames
    officer_codes = set(officer.permissions.values_list("codename", flat=True))
    assert {"add_customer", "change_customer", "view_order", "view_ledgerentry"} <= officer_codes
    assert not {"change_ledgerentry", "delete_ledgerentry", "add_ledgerentry"} & officer_codes
    assert not [c for c in officer_codes if c.startswith("delete_")]
    assert "change_historicalcustomer" not in officer_codes


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
    from compliance.roles import sync_roles

    officer = Group.objects.get(name=OFFICER)
    officer.permissions.remove(*officer.permissions.filter(codename="change_order"))
    helpdesk = Group.objects.create(name="Helpdesk")
    helpdesk.permissions.add(*officer.permissions.filter(codename="view_order"))
    sync_roles()
    assert officer.permissions.filter(codename="change_order").exists()
    assert list(helpdesk.permissions.values_list("codename", flat=True)) == ["view_order"]


def test_auditor_sees_every_changelist(auditor_client, demo):
    """Every registered admin's list page opens for the auditor, without bulk actions."""
    for _model, _model_admin, name in _admin_urls():
        response = auditor_client.get(reverse(f"{name}_changelist"))
        assert response.status_code == 200, name
        assert b'name="action"' not in response.content, f"{name} offers actions"


def test_auditor_cannot_add_change_or_delete_anything(auditor_client, demo):
    """Add, change (POST) and delete return 403 on every registered model."""
    for model, _model_admin, name in _admin_urls():
        assert auditor_client.get(reverse(f"{name}_add")).status_code == 403, name
        obj = model._default_manager.first()
        if obj is None:
            continue
        change = reverse(f"{name}_change", args=[obj.pk])
        page = auditor_client.get(change)
        assert page.status_code == 200, name
        assert b'name="_save"' not in page.content, f"{name} offers Save"
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
    assert auditor_client.post(url, {"name": "Changed"}).status_code == 403
    assert customer.history.count() == before


def test_nobody_reverts_through_the_history_form_yet(officer_client, demo):
    """Until restore is a service with its own checks and ledger entry, the form is read-only."""
    customer = Customer.objects.first()
    version = customer.history.earliest()
    url = reverse("admin:shop_customer_simple_history", args=[customer.pk, version.pk])
    assert officer_client.get(url).status_code == 200
    data = {"email": customer.email, "name": "Reverted", "phone": "", "avatar_url": ""}
    assert officer_client.post(url, data).status_code == 403
    customer.refresh_from_db()
    assert customer.name != "Reverted"


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


def test_officer_edits_customers(officer_client, demo):
    """The officer role can change personal data (and so history records it)."""
    customer = Customer.objects.first()
    page = officer_client.get(reverse("admin:shop_customer_change", args=[customer.pk]))
    assert page.status_code == 200 and b'name="_save"' in page.content
