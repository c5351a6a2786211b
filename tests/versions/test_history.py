"""History rows carry who, where and why, from the admin, commands and set-based writes."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from simple_history.signals import pre_create_historical_record

from shop.models import Customer
from versions.context import change_context
from versions.history import bulk_create_with_context


def _change_customer(client, customer, **changes):
    data = {
        "email": customer.email,
        "name": customer.name,
        "phone": customer.phone,
        "avatar_url": "",
        "date_of_birth": "",
        **changes,
    }
    return client.post(
        f"/admin/shop/customer/{customer.pk}/change/",
        data,
        REMOTE_ADDR="203.0.113.5",
        HTTP_USER_AGENT="Officer-Browser/1.0",
    )


def test_admin_change_records_user_ip_agent_and_request(officer_client, officer, customer):
    """An officer's edit in the admin leaves a history row with the full context."""
    response = _change_customer(officer_client, customer, phone="+44 20 7946 0002")
    assert response.status_code == 302
    row = customer.history.latest()
    assert row.phone == "+44 20 7946 0002"
    assert row.history_type == "~"
    assert row.history_user == officer
    assert row.history_ip == "203.0.113.5"
    assert row.history_user_agent == "Officer-Browser/1.0"
    assert row.history_request_id == response["X-Request-ID"]


def test_admin_write_and_history_row_share_one_transaction(officer_client, customer):
    """If the history row cannot be written, the admin change is rolled back too."""

    def fail(**kwargs):
        raise RuntimeError("history store unavailable")

    pre_create_historical_record.connect(fail, dispatch_uid="test-fail")
    try:
        with pytest.raises(RuntimeError):
            _change_customer(officer_client, customer, phone="+44 20 7946 0999")
    finally:
        pre_create_historical_record.disconnect(dispatch_uid="test-fail")
    customer.refresh_from_db()
    assert customer.phone == "+44 20 7946 0001"
    assert customer.history.count() == 1  # only the creation


def test_command_context_records_actor_and_reason(db):
    """A command run with --reason names itself and the reason in every history row."""
    with override_settings(DEMO=True):
        call_command(
            "seed_demo", customers=3, no_logins=True, reason="ticket 42", stdout=StringIO()
        )
    rows = Customer.history.filter(history_type="+")
    assert rows.count() == 3
    assert set(rows.values_list("history_channel", flat=True)) == {"command:seed_demo"}
    # The service's own reason is more specific than the command's and wins inside it.
    assert set(rows.values_list("history_change_reason", flat=True)) == {
        "Demo data: sign-up and activity"
    }


def test_actor_option_names_the_user(db, officer):
    """--actor USERNAME makes the history rows name that user."""
    with override_settings(DEMO=True):
        call_command("seed_demo", customers=2, no_logins=True, actor="officer", stdout=StringIO())
    assert set(Customer.history.values_list("history_user_id", flat=True)) == {officer.pk}


def test_unknown_actor_is_a_clear_error(db):
    """An unknown --actor stops the command before it changes anything."""
    from django.core.management.base import CommandError

    with override_settings(DEMO=True), pytest.raises(CommandError, match="Unknown user 'nobody'"):
        call_command("seed_demo", customers=2, actor="nobody", stdout=StringIO())
    assert not Customer.objects.exists()


def test_set_based_writes_carry_the_context(db, officer):
    """Bulk inserts write their history rows in bulk, with the same context columns."""
    with change_context(user=officer, channel="task:import", ip="192.0.2.9", reason="import"):
        bulk_create_with_context(
            [Customer(email=f"c{i}@example.org", name=f"C {i}") for i in range(3)], Customer
        )
    rows = list(Customer.history.all())
    assert len(rows) == 3
    assert {
        (r.history_user_id, r.history_channel, r.history_ip, r.history_change_reason) for r in rows
    } == {(officer.pk, "task:import", "192.0.2.9", "import")}


def test_plain_save_outside_any_context_still_records_history(db):
    """Code with no context still leaves a history row, with empty context columns."""
    customer = Customer.objects.create(email="x@example.org", name="X")
    row = customer.history.get()
    assert row.history_user is None and row.history_ip is None and row.history_channel == ""


def test_history_page_shows_context_columns(officer_client, customer):
    """The admin history page lists IP address and user agent columns."""
    _change_customer(officer_client, customer, phone="+44 20 7946 0003")
    page = officer_client.get(f"/admin/shop/customer/{customer.pk}/history/")
    assert page.status_code == 200
    assert b"203.0.113.5" in page.content
    assert b"Officer-Browser/1.0" in page.content


def test_session_token_never_reaches_history(db, customer):
    """Credentials are excluded from history tables."""
    from datetime import timedelta

    from django.utils import timezone

    from shop.models import Session

    Session.objects.create(
        customer=customer, token="secret-token", expires_at=timezone.now() + timedelta(days=1)
    )
    history_fields = {f.name for f in Session.history.model._meta.fields}
    assert "token" not in history_fields


def _row_values(row):
    """A history row's stored values, without those that differ between two saves."""
    skip = {"history_id", "history_date", "id", "number", "created_at", "occurred_at"}
    return {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields} | dict.fromkeys(
        skip
    )


def _order(customer, n):
    from decimal import Decimal

    from shop.models import Order

    return Order.objects.create(
        customer=customer, number=f"ORD-T{n}", total=Decimal("12.30"), shipping_name="A B",
        shipping_address="1 Road", shipping_postcode="123", shipping_city="Rome",
        shipping_country="IT",
    )  # fmt: skip


def _event(customer, n):
    from shop.models import AnalyticsEvent

    return AnalyticsEvent.objects.create(
        customer=customer, name="login", properties={"path": "/", "n": [1, 2]},
        ip_address="2001:db8::1",
    )  # fmt: skip


@pytest.mark.parametrize("make", [_order, _event], ids=["order", "analytics-event"])
def test_direct_history_insert_writes_what_simple_history_would(db, officer, customer, make):
    """A tracked save inserts its history row directly, exactly as simple-history's path would."""
    from unittest import mock

    from django.db.models.signals import post_save

    history_model = make(customer, 0).history.model
    saved_through_orm = []

    def listener(instance, **kwargs):
        saved_through_orm.append(instance.history_id)

    with change_context(user=officer, ip="192.0.2.4", user_agent="UA", reason="compare"):
        with mock.patch.object(history_model, "save", side_effect=AssertionError("ORM save")):
            direct = make(customer, 1)  # the history model's save() is not called
        post_save.connect(listener, sender=history_model, dispatch_uid="listen")
        try:
            through_orm = make(customer, 2)  # a listener sends the row through save()
        finally:
            post_save.disconnect(sender=history_model, dispatch_uid="listen")
    direct_row, orm_row = direct.history.get(), through_orm.history.get()
    assert saved_through_orm == [orm_row.history_id]
    assert _row_values(direct_row) == _row_values(orm_row)
    assert direct_row.history_user_id == officer.pk and direct_row.history_ip == "192.0.2.4"
    assert direct_row.history_change_reason == "compare"


def test_admin_change_rolls_back_when_the_database_refuses_its_history_row(
    officer_client, customer
):
    """The direct history INSERT shares the admin's transaction: its failure undoes the edit."""
    from django.db import DatabaseError, connection

    def rename(old, new):
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {old} RENAME TO {new}")

    rename("shop_historicalcustomer", "shop_historicalcustomer_away")
    try:
        with pytest.raises(DatabaseError):
            _change_customer(officer_client, customer, phone="+44 20 7946 0998")
    finally:
        rename("shop_historicalcustomer_away", "shop_historicalcustomer")
    customer.refresh_from_db()
    assert customer.phone == "+44 20 7946 0001"
    assert customer.history.count() == 1  # only the creation


def test_history_page_looks_users_up_once_per_page(officer_client, officer, customer, db):
    """ "Changed by" costs one user query for the page, however many rows it shows."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    other = get_user_model().objects.create_user("second-officer")
    url = f"/admin/shop/customer/{customer.pk}/history/"

    def queries_for_page():
        with CaptureQueriesContext(connection) as captured:
            page = officer_client.get(url)
        assert page.status_code == 200
        return len(captured), page

    for n, user in enumerate([officer, other, officer]):
        with change_context(user=user):
            customer.phone = f"+44 5{n}"
            customer.save()
    few, _ = queries_for_page()
    for n, user in enumerate([other, officer, other, officer, other, officer]):
        with change_context(user=user):
            customer.phone = f"+44 6{n}"
            customer.save()
    many, page = queries_for_page()
    assert many == few
    assert page.content.count(b"<td>second-officer</td>") == 4


def test_history_names_a_deleted_user_by_id(officer_client, officer, customer):
    """Deleting a user keeps who changed what: the history page shows the former user's id."""
    _change_customer(officer_client, customer, phone="+44 20 7946 0004")
    officer_id = officer.pk
    officer_client.logout()
    officer.delete()
    assert customer.history.latest().history_user_id == officer_id
    from django.contrib.auth import get_user_model

    viewer = get_user_model().objects.create_superuser("root", password="x")
    officer_client.force_login(viewer)
    page = officer_client.get(f"/admin/shop/customer/{customer.pk}/history/")
    assert f"user #{officer_id} (deleted)".encode() in page.content


def test_direct_insert_honours_simple_historys_per_instance_overrides(db, officer, customer):
    """``_history_user``, ``_change_reason`` and ``_history_date`` win over the context."""
    from datetime import UTC, datetime

    from django.contrib.auth import get_user_model

    other = get_user_model().objects.create_user("other-officer")
    when = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    with change_context(user=officer, reason="context reason"):
        customer.name = "Overridden"
        customer._history_user = other
        customer._change_reason = "instance reason"
        customer._history_date = when
        customer.save()
    row = customer.history.latest("history_id")
    assert (row.history_user_id, row.history_change_reason, row.history_date) == (
        other.pk,
        "instance reason",
        when,
    )


def test_delete_writes_a_history_row_with_the_context(db, officer):
    """Deleting a tracked record leaves a ``-`` row carrying who deleted it and from where."""
    customer = Customer.objects.create(email="gone@example.com", name="Gone")
    pk = customer.pk
    with change_context(user=officer, ip="198.51.100.9", user_agent="UA", reason="duplicate"):
        customer.hard_delete()
    row = Customer.history.filter(id=pk).latest("history_id")
    assert (row.history_type, row.email, row.history_user_id) == (
        "-",
        "gone@example.com",
        officer.pk,
    )
    assert (row.history_ip, row.history_user_agent, row.history_change_reason) == (
        "198.51.100.9",
        "UA",
        "duplicate",
    )


def test_expression_values_are_recorded_as_stored(db, customer):
    """A field set to an SQL expression (``read_at = Now()``) is history'd as its value."""
    from datetime import timedelta

    from django.db.models.functions import Now

    from shop.models import Notification

    note = Notification.objects.create(customer=customer, title="Parcel shipped", body="…")
    note.read_at = Now()
    note.save()
    note.refresh_from_db()
    row = note.history.latest("history_id")
    # simple-history evaluates the expression again in its own INSERT, a moment later.
    assert row.history_type == "~" and note.read_at is not None
    assert abs(row.read_at - note.read_at) < timedelta(seconds=5)


def test_failed_history_insert_dooms_the_enclosing_transaction(db, customer):
    """Catching the history INSERT's error cannot commit the change without its history."""
    import contextlib

    from django.db import DatabaseError, connection, transaction

    def rename(old, new):
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {old} RENAME TO {new}")

    rename("shop_historicalcustomer", "shop_historicalcustomer_away")
    try:
        with transaction.atomic():
            customer.phone = "+44 997"
            with contextlib.suppress(DatabaseError):  # a caller that swallows the error
                customer.save()
    finally:
        rename("shop_historicalcustomer_away", "shop_historicalcustomer")
    customer.refresh_from_db()
    assert customer.phone == "+44 20 7946 0001"
