"""The shop's admin: refusals in the admin's layout, lists without a query per row."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shop.models import Customer, Order, PasswordResetToken, Session


def test_refused_add_is_shown_in_the_admin_layout(auditor_client):
    """A refused add page says what was refused, in the admin's layout, with a way back."""
    response = auditor_client.get(
        "/admin/shop/customer/add/", HTTP_REFERER="http://testserver/admin/shop/customer/"
    )
    assert response.status_code == 403
    page = response.content.decode()
    assert "Compliance administration" in page  # the admin's header
    assert 'id="nav-sidebar"' in page
    assert "Your account (auditor) may not add a customer." in page
    assert '<a class="button" href="/admin/shop/customer/">Back to customers</a>' in page


def test_refused_change_names_the_change_and_the_object_kind(auditor_client, customer):
    """A refused POST to a change form says the change was refused."""
    url = f"/admin/shop/customer/{customer.pk}/change/"
    response = auditor_client.post(url, {"full_name": "Changed"})
    assert response.status_code == 403
    assert "may not change this customer." in response.content.decode()


def test_refused_delete_names_the_delete(auditor_client, customer):
    """Auditors delete nothing: the delete page is refused, in the layout, naming the delete."""
    response = auditor_client.get(f"/admin/shop/customer/{customer.pk}/delete/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "Your account (auditor) may not delete this customer." in page
    assert "Back to customers" in page


def test_refused_page_of_a_model_the_user_cannot_see_leads_home(client, django_user_model):
    """Without access to the model's list, the way back is the admin's home page."""
    client.force_login(django_user_model.objects.create_user("newcomer", is_staff=True))
    response = client.get("/admin/shop/customer/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "Your account (newcomer) may not view the list of customers." in page
    assert '<a class="button" href="/admin/">Back to the administration home page</a>' in page


def test_refused_page_never_links_to_another_site(auditor_client):
    """A referer from another host is not offered as the way back."""
    response = auditor_client.get("/admin/shop/customer/add/", HTTP_REFERER="https://evil.example/")
    assert response.status_code == 403
    assert "evil.example" not in response.content.decode()


def _seed(customers: int, first: int = 0):
    now = timezone.now()
    for n in range(first, first + customers):
        owner = Customer.objects.create(email=f"c{n}@example.org", full_name=f"Customer {n}")
        Session.objects.create(customer=owner, user_agent="UA " * 100, expires_at=now)
        PasswordResetToken.objects.create(customer=owner, expires_at=now + timedelta(hours=1))
        Order.objects.create(
            customer=owner,
            number=f"ORD-{n}",
            total=10,
            shipping_name=owner.full_name,
            shipping_address="1 Elm Street",
            shipping_postcode="12345",
            shipping_city="Dublin",
            shipping_country="IE",
        )


@pytest.mark.parametrize(
    "url", ["/admin/shop/session/", "/admin/shop/passwordresettoken/", "/admin/shop/order/"]
)
def test_lists_show_customer_names_without_a_query_per_row(admin_client, url):
    """The number of queries of a list does not grow with its rows (customers are joined)."""
    _seed(2)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(url).status_code == 200
    _seed(20, first=2)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(url)
    assert len(many) == len(few)
    assert "Customer 17" in response.content.decode()


def test_session_list_cuts_the_user_agent_and_the_change_page_shows_it_whole(admin_client):
    """The list shows the start of the user agent (whole on hover); the change page all of it."""
    _seed(1)
    session = Session.objects.get()
    listed = admin_client.get("/admin/shop/session/").content.decode()
    assert f'title="{session.user_agent}"' in listed
    assert ">UA UA UA UA UA UA UA …<" in listed
    change = admin_client.get(f"/admin/shop/session/{session.pk}/change/").content.decode()
    assert session.user_agent.strip() in change
    assert "Session of Customer 0," in change


def test_refused_page_offers_the_previous_page_of_this_site(auditor_client, customer):
    """A referer on this site other than the list is offered as the previous page."""
    previous = f"http://testserver/admin/shop/customer/{customer.pk}/change/"
    response = auditor_client.get("/admin/shop/customer/add/", HTTP_REFERER=previous)
    assert f'<a href="{previous}">Return to the previous page</a>' in response.content.decode()
