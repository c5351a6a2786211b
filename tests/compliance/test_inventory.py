"""The personal-data inventory page (record of processing activities)."""

import csv
import io

from django.urls import reverse

from compliance.registry import registry


def test_inventory_lists_every_registered_model(auditor_client):
    """Each model, its subject path, fields with category and anonymiser, erasure, basis."""
    page = auditor_client.get(reverse("admin:compliance_inventory"))
    assert page.status_code == 200
    html = page.content.decode()
    for entry in registry.entries():
        assert entry.label in html
        for name in entry.fields:
            assert f"<code>{name}</code>" in html
    assert "sender, recipient" in html
    assert "Retain for a legal reason — Commercial and tax law" in html
    assert "Replaced by erased-&lt;id&gt;@erased.invalid" in html
    assert "occurred_at" in html


def test_inventory_is_linked_from_the_admin_index(auditor_client):
    """The index shows the inventory under Compliance."""
    page = auditor_client.get(reverse("admin:index"))
    assert b"Personal-data inventory" in page.content
    assert reverse("admin:compliance_inventory").encode() in page.content


def test_inventory_downloads_as_csv(officer_client):
    """The CSV has one row per personal field."""
    response = officer_client.get(reverse("admin:compliance_inventory") + "?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == sum(len(entry.fields) or 1 for entry in registry.entries())
    preference = next(r for r in rows if r["model"] == "shop.NotificationPreference")
    assert preference["field"] == "" and preference["lawful basis"].startswith("Contract")
    email = next(r for r in rows if r["model"] == "shop.Customer" and r["field"] == "email")
    assert email["category"] == "Contact details" and email["erasure"].startswith("Anonymise")


def test_inventory_needs_a_staff_login(client):
    """Anonymous visitors are sent to the login page."""
    response = client.get(reverse("admin:compliance_inventory"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_without_permissions_cannot_see_the_inventory(client, django_user_model):
    """A staff login that may view no registered model sees neither link nor page."""
    user = django_user_model.objects.create_user("intern", password="x", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:compliance_inventory")).status_code == 403
    assert b"Personal-data inventory" not in client.get(reverse("admin:index")).content
