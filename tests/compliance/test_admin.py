"""The registry's rules on every model admin: deletes are ledger entries, retention dates
are read-only."""

import json
from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import DatabaseError, connection
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule

from compliance.registry import registry
from compliance.registry_admin import RegistryAdminMixin
from shop.models import Order, Session
from versions.ledger import ledger_verify
from versions.models import LedgerEntry

IP = "203.0.113.77"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) Secret-Browser/9"


def _session(customer):
    return Session.objects.create(
        customer=customer,
        ip_address=IP,
        user_agent=AGENT,
        expires_at=timezone.now() + timedelta(days=1),
    )


def _hard_deletes():
    return list(LedgerEntry.objects.filter(action="hard_delete"))


def _entry_text(entry):
    return json.dumps(
        {f.attname: getattr(entry, f.attname) for f in LedgerEntry._meta.fields}, default=str
    )


def test_every_model_admin_has_the_registry_rules():
    """Whatever class an app registers with, the site adds the mixin (auth and beat too)."""
    assert admin.site._registry
    assert all(isinstance(ma, RegistryAdminMixin) for ma in admin.site._registry.values())


def test_superuser_deleting_a_session_writes_one_ledger_entry(admin_client, admin_user, customer):
    """The delete view: one hard_delete entry, count 1, who; none of the session's data."""
    session = _session(customer)
    token = session.token
    url = reverse("admin:shop_session_delete", args=[session.pk])
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Session.objects.filter(pk=session.pk).exists()
    [entry] = _hard_deletes()
    assert (entry.target, entry.counts, entry.actor) == (
        "shop.Session",
        {"shop.Session": 1},
        admin_user,
    )
    assert entry.reason == "" and entry.request_id
    text = _entry_text(entry)
    for personal in (IP, AGENT, token, customer.email, customer.full_name):
        assert personal not in text
    assert ledger_verify(actor=None, reason="").ok


def test_delete_selected_of_three_counts_three(admin_client, customer):
    """The "delete selected" action: one entry whose count is the number of rows deleted."""
    ids = [_session(customer).pk for _ in range(3)]
    _session(customer)  # not selected, stays
    response = admin_client.post(
        reverse("admin:shop_session_changelist"),
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert Session.objects.count() == 1
    [entry] = _hard_deletes()
    assert entry.counts == {"shop.Session": 3}


def test_cascade_is_counted(admin_client, customer):
    """Deleting a customer permanently counts the registered rows the cascade removes."""
    _session(customer)
    _session(customer)
    response = admin_client.post(
        reverse("admin:shop_customer_changelist") + "?state=all",
        {
            "action": "hard_delete_selected",
            "_selected_action": [customer.pk],
            "post": "yes",
            "reason": "duplicate",
        },
    )
    assert response.status_code == 302
    [entry] = _hard_deletes()
    assert entry.target == "shop.Customer"
    assert entry.counts == {"shop.Customer": 1, "shop.Session": 2}


def test_soft_delete_in_the_admin_is_no_hard_delete(admin_client, customer):
    """Deleting a customer in the admin hides it: history records it, the ledger does not."""
    url = reverse("admin:shop_customer_delete", args=[customer.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert _hard_deletes() == []
    assert customer.history.latest("history_id").deleted_at is not None


def test_a_held_row_cannot_be_deleted_in_the_admin(admin_client, customer):
    """The delete page lists the held session as protected; a POST deletes nothing."""
    from retention.services import hold_place

    session = _session(customer)
    hold_place(record=session, reason="fraud case", ground="art17_3_e", actor=None)
    url = reverse("admin:shop_session_delete", args=[session.pk])
    page = admin_client.get(url).content.decode()
    assert "(under a legal hold)" in page
    admin_client.post(url, {"post": "yes"})
    assert Session.objects.filter(pk=session.pk).exists()
    assert _hard_deletes() == []


def test_deleting_an_unregistered_model_writes_no_entry(admin_client):
    """A row outside the registry (a beat interval) is deleted without a ledger entry."""
    interval = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    url = reverse("admin:django_celery_beat_intervalschedule_delete", args=[interval.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not IntervalSchedule.objects.filter(pk=interval.pk).exists()
    assert _hard_deletes() == []


@pytest.fixture
def ledger_refuses_inserts(db):
    """A database trigger that fails every ledger insert (rolled back with the test)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION test_refuse_ledger() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'ledger refused'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER test_refuse_ledger BEFORE INSERT ON versions_ledgerentry "
                "FOR EACH ROW EXECUTE FUNCTION test_refuse_ledger()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER test_refuse_ledger BEFORE INSERT ON versions_ledgerentry "
                "BEGIN SELECT RAISE(ABORT, 'ledger refused'); END"
            )


@pytest.mark.parametrize("via", ["delete view", "delete selected"])
def test_delete_is_rolled_back_when_the_ledger_append_fails(
    admin_client, customer, ledger_refuses_inserts, via
):
    """No ledger entry, no delete: the session and its history stay as they were."""
    session = _session(customer)
    history = session.history.count()
    if via == "delete view":
        url, data = reverse("admin:shop_session_delete", args=[session.pk]), {"post": "yes"}
    else:
        url = reverse("admin:shop_session_changelist")
        data = {"action": "delete_selected", "_selected_action": [session.pk], "post": "yes"}
    with pytest.raises(DatabaseError, match="ledger refused"):
        admin_client.post(url, data)
    assert Session.objects.filter(pk=session.pk).exists()
    assert session.history.count() == history
    assert LedgerEntry.objects.count() == 0


def _order(customer):
    return Order.objects.create(
        customer=customer,
        number="A-100",
        total="9.50",
        shipping_name="Ada Lovelace",
        shipping_address="12 St James's Square",
        shipping_postcode="SW1Y 4JH",
        shipping_city="London",
        shipping_country="GB",
        created_at=timezone.now() - timedelta(days=400),
    )


def test_retention_basis_is_read_only_in_the_admin(officer_client, customer):
    """An order's created_at is shown, not editable; a POST that changes it is ignored."""
    order = _order(customer)
    url = reverse("admin:shop_order_change", args=[order.pk])
    page = officer_client.get(url)
    assert page.status_code == 200
    assert b'name="created_at_0"' not in page.content and b'name="_save"' in page.content
    data = {
        "customer": customer.pk,
        "number": "A-100",
        "status": "paid",
        "total": "9.50",
        "currency": "EUR",
        "shipping_name": "Ada Lovelace",
        "shipping_address": "12 St James's Square",
        "shipping_postcode": "SW1Y 4JH",
        "shipping_city": "London",
        "shipping_country": "GB",
        "created_at_0": timezone.now().date().isoformat(),
        "created_at_1": "12:00:00",
    }
    assert officer_client.post(url, data).status_code == 302
    fresh = Order.objects.get(pk=order.pk)
    assert fresh.status == "paid"  # the save went through
    assert fresh.created_at == order.created_at


def test_every_registered_admin_marks_its_retention_basis_read_only(rf, admin_user):
    """The rule comes from the registry: each registered model's basis is read-only."""
    request = rf.get("/")
    request.user = admin_user
    checked = 0
    for entry in registry.entries():
        model_admin = admin.site._registry.get(entry.model)
        if model_admin is None or not entry.retention_basis:
            continue
        checked += 1
        assert entry.retention_basis in model_admin.get_readonly_fields(request), entry.label
    assert checked == 12  # the shop's nine, requests, consent events and states
