"""The privacy center's pages: public, no staff login."""

import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_the_home_page_opens_without_a_login(client):
    """Anyone reaches the privacy center's home page, in its own layout, not the admin's."""
    page = client.get(reverse("privacy_center:home"))
    assert page.status_code == 200
    assert b"Privacy center" in page.content and b"/admin/" not in page.content


@pytest.mark.django_db
def test_a_missing_page_under_the_center_keeps_the_centers_layout(client, settings):
    """A person who follows a broken link sees the center's page, with no way into the admin."""
    settings.DEBUG = False
    page = client.get(reverse("privacy_center:home") + "no-such-page/")
    assert page.status_code == 404
    assert b"Back to the privacy center" in page.content
    assert b"administration" not in page.content and b"/admin/" not in page.content


@pytest.mark.django_db
def test_a_missing_admin_page_keeps_the_admins_layout(admin_client, settings):
    """Outside the center nothing changes: a missing admin page shows the admin's way home."""
    settings.DEBUG = False
    page = admin_client.get("/admin/compliance/no-such-page/")
    assert page.status_code == 404
    assert b"Back to the administration home page" in page.content
