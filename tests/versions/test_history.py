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
        "full_name": customer.full_name,
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
            [Customer(email=f"c{i}@example.org", full_name=f"C {i}") for i in range(3)], Customer
        )
    rows = list(Customer.history.all())
    assert len(rows) == 3
    assert {
        (r.history_user_id, r.history_channel, r.history_ip, r.history_change_reason) for r in rows
    } == {(officer.pk, "task:import", "192.0.2.9", "import")}


def test_plain_save_outside_any_context_still_records_history(db):
    """Code with no context still leaves a history row, with empty context columns."""
    customer = Customer.objects.create(email="x@example.org", full_name="X")
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


def test_admin_change_rolls_back_when_the_database_refuses_its_history_row(
    officer_client, customer
):
    """The history INSERT shares the admin's transaction: its failure undoes the edit."""
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


def test_per_instance_user_reason_and_date_win_over_the_context(db, officer, customer):
    """``_history_user``, ``_change_reason`` and ``_history_date`` win over the context."""
    from datetime import UTC, datetime

    from django.contrib.auth import get_user_model

    other = get_user_model().objects.create_user("other-officer")
    when = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    with change_context(user=officer, reason="context reason"):
        customer.full_name = "Overridden"
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
    customer = Customer.objects.create(email="gone@example.com", full_name="Gone")
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


@pytest.mark.parametrize("atomic", [False, True], ids=["autocommit", "atomic"])
def test_expression_values_are_recorded_as_stored(db, customer, atomic):
    """A field set to an SQL expression (``read_at = Now()``) is history'd as the stored value."""
    from contextlib import nullcontext

    from django.db import transaction
    from django.db.models.functions import Now

    from shop.models import Notification

    note = Notification.objects.create(customer=customer, title="Parcel shipped", body="…")
    with transaction.atomic() if atomic else nullcontext():
        note.read_at = Now()
        note.save()
    stored = Notification.objects.get(pk=note.pk).read_at
    row = note.history.latest("history_id")
    assert row.history_type == "~" and stored is not None
    assert row.read_at == stored


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


def test_a_reason_of_any_length_is_stored_whole(db, officer, customer):
    """A reason of over 600 characters from the context is stored character for character."""
    reason = "Art. 17 erasure request, ticket 4711: " + "the subject asked in writing; " * 20
    assert len(reason) > 500
    with change_context(user=officer, reason=reason):
        customer.full_name = "Ada King"
        customer.save()
    assert customer.history.latest("history_id").history_change_reason == reason


def _tracked_admin_models():
    from django.apps import apps
    from django.contrib import admin

    return [
        model
        for model in apps.get_models()
        if hasattr(model._meta, "simple_history_manager_attribute")
        and admin.site.is_registered(model)
    ]


@pytest.mark.parametrize(
    "path", ["{pk}/history/abc/", "abc/history/1/", "abc/history/", "{pk}/history/999999/"]
)
def test_malformed_or_unknown_history_ids_are_404_on_every_tracked_model(
    admin_client, customer, path
):
    """A history or version URL whose ids are not ids (or match nothing) is a 404, not a 500."""
    models = _tracked_admin_models()
    assert len(models) >= 9
    for model in models:
        opts = model._meta
        url = f"/admin/{opts.app_label}/{opts.model_name}/{path.format(pk=customer.pk)}"
        assert admin_client.get(url).status_code == 404, url


def test_history_pages_find_a_manager_with_another_name(
    admin_client, officer, customer, monkeypatch
):
    """The history list and a version open when the history manager is not called ``history``."""
    with change_context(user=officer, ip="192.0.2.44"):
        customer.full_name = "Ada, renamed"
        customer.save()
    version = customer.history.latest("history_id")
    monkeypatch.setattr(Customer, "changes", Customer.__dict__["history"], raising=False)
    monkeypatch.delattr(Customer, "history")
    monkeypatch.setattr(Customer._meta, "simple_history_manager_attribute", "changes")

    listing = admin_client.get(f"/admin/shop/customer/{customer.pk}/history/")
    assert listing.status_code == 200 and b"192.0.2.44" in listing.content
    page = admin_client.get(f"/admin/shop/customer/{customer.pk}/history/{version.pk}/")
    assert page.status_code == 200 and b"Ada, renamed" in page.content


def test_version_page_is_read_only_and_says_who_when_where_and_why(
    officer_client, officer, customer
):
    """A version shows values as text, no form fields, and its user, date, IP, agent, ids, why."""
    import re

    from django.utils.formats import date_format
    from django.utils.timezone import localtime

    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126"
    with change_context(
        user=officer,
        ip="198.51.100.23",
        user_agent=agent,
        request_id="4f2a9c1be0d84e6f9a3b5c7d1e2f3a4b",
        task_id="7d0c1f6e-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        channel="task:shop.sync",
        reason="address corrected on the customer's request",
    ):
        customer.phone = "+44 20 7946 0018"
        customer.save()
    version = customer.history.latest("history_id")
    page = officer_client.get(f"/admin/shop/customer/{customer.pk}/history/{version.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    # The page's own content; the header's log-out button is the admin's, on every page.
    content = html.split('id="content-main"', 1)[1].split("<!-- END Content -->", 1)[0]
    assert not re.search(r"<(form|input|textarea|select|button)\b", content)
    when = date_format(localtime(version.history_date), "DATETIME_FORMAT")
    for shown in [
        "officer",
        when,
        "198.51.100.23",
        agent,
        "4f2a9c1be0d84e6f9a3b5c7d1e2f3a4b",
        "7d0c1f6e-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "task:shop.sync",
        "address corrected on the customer&#x27;s request",
        "+44 20 7946 0018",
        "ada@example.org",
    ]:
        assert shown in content, shown


def test_versions_of_a_deleted_record_still_open(admin_client, officer, customer):
    """After a delete, its history and each version (the deletion included) open read-only."""
    pk = customer.pk
    with change_context(user=officer, reason="duplicate account"):
        customer.delete()
    deletion = Customer.history.filter(id=pk).latest("history_id")
    assert admin_client.get(f"/admin/shop/customer/{pk}/history/").status_code == 200
    page = admin_client.get(f"/admin/shop/customer/{pk}/history/{deletion.pk}/")
    assert page.status_code == 200
    assert b"Deleted" in page.content and b"duplicate account" in page.content


# No empty versions ------------------------------------------------------------------------


def test_a_save_that_changes_nothing_writes_no_version(db, customer):
    """Saving a loaded record unchanged (updated_at aside) adds no history row."""
    loaded = Customer.objects.get(pk=customer.pk)
    loaded.save()
    customer.save()  # the instance that created the row remembers its values too
    assert customer.history.count() == 1

    loaded.full_name = "Ada King"
    loaded.save()
    loaded.save()
    assert list(customer.history.values_list("history_type", "full_name")) == [
        ("~", "Ada King"),
        ("+", "Ada Lovelace"),
    ]


def test_a_change_to_a_field_not_loaded_still_writes_a_version(db, customer):
    """A record loaded with only() may have changed anywhere: its save is recorded."""
    partial = Customer.objects.only("pk").get(pk=customer.pk)
    partial.full_name = "Ada King"
    partial.save(update_fields=["full_name"])
    assert customer.history.count() == 2


def test_a_json_value_changed_in_place_is_a_change(db, customer):
    """A dict edited in place differs from the remembered copy: a version is written."""
    from shop.models import AnalyticsEvent

    event = AnalyticsEvent.objects.create(customer=customer, name="view", properties={"a": 1})
    event = AnalyticsEvent.objects.get(pk=event.pk)
    event.properties["a"] = 2
    event.save()
    assert [row.properties for row in event.history.all()] == [{"a": 2}, {"a": 1}]


def test_a_model_may_record_every_save(db, customer):
    """With unchanged_saves=True a model keeps a version per save, changed or not."""
    from versions.history import history_options

    options = history_options(Customer)
    options.unchanged_saves = True
    try:
        Customer.objects.get(pk=customer.pk).save()
    finally:
        options.unchanged_saves = False
    assert customer.history.count() == 2


def test_admin_save_without_changes_adds_no_version(officer_client, customer):
    """Pressing Save on an unchanged admin form leaves the history as it was."""
    url = f"/admin/shop/customer/{customer.pk}/change/"
    data = {"email": customer.email, "full_name": customer.full_name, "phone": "+442079460001"}
    response = officer_client.post(url, {**data, "avatar_url": ""})
    assert response.status_code == 302
    assert customer.history.count() == 1
