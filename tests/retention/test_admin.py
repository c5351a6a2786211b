"""Soft delete in the admin: the state filter, marked rows, restore and permanent delete."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from shop.models import Customer, Document
from versions.models import LedgerEntry

CHANGELIST = "/admin/shop/customer/"


@pytest.fixture
def gone(db):
    customer = Customer.objects.create(email="gone@example.org", full_name="Gone Person")
    customer.delete()
    return customer


@pytest.fixture
def live(db):
    return Customer.objects.create(email="live@example.org", full_name="Live Person")


def _staff(username, *codenames):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def _action(client, action, pks, state="active", **extra):
    """Run an action from the changelist filtered to `state`, as the form on that page would."""
    url = f"{CHANGELIST}?state={state}"
    return client.post(url, {"action": action, "_selected_action": pks, **extra})


def test_list_shows_active_rows_by_default_and_deleted_ones_on_request(admin_client, gone, live):
    """Active by default; "Deleted" lists the deleted row, marked; "All" both."""
    page = admin_client.get(CHANGELIST).content.decode()
    assert "Live Person" in page and "Gone Person" not in page
    deleted = admin_client.get(CHANGELIST, {"state": "deleted"}).content.decode()
    assert "Gone Person" in deleted and "Live Person" not in deleted
    assert 'class="deleted-marker"' in deleted
    everything = admin_client.get(CHANGELIST, {"state": "all"}).content.decode()
    assert "Gone Person" in everything and "Live Person" in everything


def test_without_view_deleted_deleted_rows_stay_hidden(client, gone, live):
    """A user without view_deleted gets no state filter and never sees a deleted row."""
    client.force_login(_staff("viewer", "view_customer"))
    page = client.get(CHANGELIST).content.decode()
    assert "Live Person" in page and "Deleted" not in page
    response = client.get(CHANGELIST, {"state": "deleted"}, follow=True)
    assert "Gone Person" not in response.content.decode()
    assert client.get(f"/admin/shop/customer/{gone.pk}/change/").status_code == 302  # not found


def test_admin_delete_is_a_soft_delete(admin_client, live):
    """The stock "delete selected" action hides the customer and its documents."""
    Document.objects.create(owner=live, title="Invoice", content="x")
    confirm = _action(admin_client, "delete_selected", [live.pk])
    assert "Document: Invoice" in confirm.content.decode()
    _action(admin_client, "delete_selected", [live.pk], post="yes")
    assert Customer.deleted_objects.filter(pk=live.pk).exists()
    assert Document.deleted_objects.filter(owner=live).count() == 1


def test_restore_asks_for_confirmation_then_restores_with_a_message(admin_client, gone):
    """The action shows a confirmation page; confirming restores and says so."""
    confirm = _action(admin_client, "restore_selected", [gone.pk], "deleted")
    assert confirm.status_code == 200
    assert "Restore these deleted customers?" in confirm.content.decode()
    assert Customer.deleted_objects.filter(pk=gone.pk).exists()
    done = _action(admin_client, "restore_selected", [gone.pk], "deleted", post="yes")
    assert done.status_code == 302
    assert Customer.objects.filter(pk=gone.pk).exists()
    messages = admin_client.get(done.url).content.decode()
    assert "Restored 1 row(s): 1 customer." in messages


def test_delete_permanently_needs_a_reason_and_writes_the_ledger(admin_client, gone):
    """Without a reason the page asks again; with one the row goes and the ledger says so."""
    again = _action(admin_client, "hard_delete_selected", [gone.pk], "deleted", post="yes")
    assert "Give a reason" in again.content.decode()
    assert Customer.all_objects.filter(pk=gone.pk).exists()
    _action(
        admin_client, "hard_delete_selected", [gone.pk], "deleted", post="yes", reason="erasure 41"
    )
    assert not Customer.all_objects.filter(pk=gone.pk).exists()
    entry = LedgerEntry.objects.get()
    assert (entry.action, entry.reason, entry.counts) == (
        "hard_delete",
        "erasure 41",
        {"shop.Customer": 1},
    )


def test_delete_permanently_is_not_offered_without_its_permission(client, gone):
    """A user who may soft-delete and restore has no "Delete permanently" action."""
    user = _staff(
        "officer2", "view_customer", "change_customer", "delete_customer", "view_deleted_customer"
    )
    client.force_login(user)
    page = client.get(CHANGELIST, {"state": "deleted"}).content.decode()
    assert "restore_selected" in page and "hard_delete_selected" not in page
    _action(client, "hard_delete_selected", [gone.pk], "deleted", post="yes", reason="x")
    assert Customer.all_objects.filter(pk=gone.pk).exists()


def test_deleted_row_opens_read_only(admin_client, gone):
    """A deleted customer's page shows its values but offers no save button, and a POST
    to it (a forged form, even a superuser's) is refused and changes nothing."""
    url = f"/admin/shop/customer/{gone.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert "gone@example.org" in page and 'name="_save"' not in page
    before = Customer.all_objects.filter(pk=gone.pk).values().get()
    history = gone.history.count()

    response = admin_client.post(
        url, {"email": "changed@example.org", "full_name": "Changed", "_save": "Save"}
    )

    assert response.status_code == 403
    assert Customer.all_objects.filter(pk=gone.pk).values().get() == before
    assert gone.history.count() == history
