"""The privacy center's pages: public, no staff login."""

import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_the_home_page_opens_without_a_login(client):
    """Anyone reaches the privacy center's home page, in its own layout, not the admin's."""
    page = client.get(reverse("privacy_center:home"))
    assert page.status_code == 200
    assert b"Privacy center" in page.content and b"/admin/" not in page.content
