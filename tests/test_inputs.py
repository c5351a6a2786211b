"""Every input is validated where it enters (DESIGN.md contract 9): each malformed value
that once made an admin page answer 500 is now a form error, a message or a 400."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.contenttypes.models import ContentType
from django.test import override_settings
from django.urls import reverse

from compliance.models import ConsentEvent, ConsentPurpose, ConsentState, SubjectExport
from operations.models import Backup
from retention.models import LegalHold, RetentionPolicy
from shop import models as shop
from shop.demo import demo_seed


@pytest.fixture
def demo(db):
    """The demo data of a few customers: a row in every table."""
    with override_settings(DEMO=True):
        demo_seed(customers=4, actor=None, reason="inputs")


def _refused(response, status=200):
    """A refusal the person can read: the page again with an error, or a 400."""
    assert response.status_code == status, response.status_code
    return response


# Foreign keys picked by search (autocomplete) or by id (raw id) ------------------------

FOREIGN_KEY_FIELDS = [
    (shop.Session, "customer"),
    (shop.Order, "customer"),
    (shop.Message, "sender"),
    (shop.Notification, "customer"),
    (shop.NotificationPreference, "customer"),
    (shop.AnalyticsEvent, "customer"),
    (shop.Document, "owner"),
    (shop.PasswordResetToken, "customer"),
]


@pytest.mark.parametrize("model,field", FOREIGN_KEY_FIELDS)
@pytest.mark.parametrize("page", ["add", "change"])
def test_a_non_numeric_foreign_key_is_a_form_error(admin_client, demo, model, field, page):
    """`customer=abc` on an add or change form shows the form again with the field's error."""
    opts = model._meta
    obj = model._base_manager.first()
    args = [obj.pk] if page == "change" else []
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{page}", args=args)
    data = admin_client.get(url).context["adminform"].form.initial
    response = admin_client.post(url, {**_as_post(data), field: "abc"})
    _refused(response)
    assert field in response.context["adminform"].form.errors


def _as_post(initial: dict) -> dict:
    return {key: ("" if value is None else value) for key, value in initial.items()}


# Actions ---------------------------------------------------------------------------------

ACTION_LISTS = [
    (shop.Customer, "restore_selected"),
    (RetentionPolicy, "preview_purge"),
    (LegalHold, "release_selected"),
    (Backup, "verify_selected"),
    (ConsentState, "withdraw_selected"),
]


@pytest.mark.parametrize("model,action", ACTION_LISTS)
@pytest.mark.parametrize("selected", ["abc", "1\x00"])
def test_a_malformed_selection_is_a_message_not_an_error(
    admin_client, demo, model, action, selected
):
    """`_selected_action` that is no id of the list goes back to the list with a message."""
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    response = admin_client.post(
        url, {"action": action, ACTION_CHECKBOX_NAME: [selected], "index": 0}, follow=True
    )
    assert response.status_code in (200, 400)
    assert response.redirect_chain or response.status_code == 400
    if response.status_code == 200:
        assert "not an item of this list" in response.content.decode()


HUGE = "99999999999999999999999"  # beyond any integer column (2**63 - 1)


@pytest.mark.parametrize("model,action", [a for a in ACTION_LISTS if a[0] is not Backup])
@pytest.mark.parametrize("selected", [HUGE, "-" + HUGE])
def test_a_selection_beyond_the_key_range_is_a_message_not_an_error(
    admin_client, demo, model, action, selected
):
    """`_selected_action` too large for the key's column is refused like a non-numeric one."""
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    response = admin_client.post(
        url, {"action": action, ACTION_CHECKBOX_NAME: [selected], "index": 0}, follow=True
    )
    assert response.status_code == 200 and response.redirect_chain
    assert "not an item of this list" in response.content.decode()


def test_a_foreign_key_beyond_the_key_range_is_a_form_error(admin_client, demo):
    """`customer=99999999999999999999999` on an order's change form is the field's error."""
    order = shop.Order.objects.first()
    url = reverse("admin:shop_order_change", args=[order.pk])
    data = _as_post(admin_client.get(url).context["adminform"].form.initial)
    response = _refused(admin_client.post(url, {**data, "customer": HUGE}))
    assert "customer" in response.context["adminform"].form.errors


# Values the database refuses ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["NaN", '{"a": NaN}', "1e309", '{"a": "\\u0000"}', "Infinity"])
def test_json_the_database_cannot_store_is_a_form_error(admin_client, demo, value):
    """An analytics event's properties must be JSON PostgreSQL accepts: no NaN, no infinity, no
    NUL character."""
    event = shop.AnalyticsEvent.objects.first()
    url = reverse("admin:shop_analyticsevent_change", args=[event.pk])
    data = _as_post(admin_client.get(url).context["adminform"].form.initial)
    data["customer"] = event.customer_id or ""
    data["properties"] = value
    response = _refused(admin_client.post(url, data))
    assert "properties" in response.context["adminform"].form.errors


@pytest.mark.parametrize("field", ["groups", "user_permissions"])
def test_a_many_to_many_key_beyond_the_key_range_is_a_form_error(admin_client, admin_user, field):
    """`groups=99999999999999999999999` on a user's change form is the field's error."""
    url = reverse("admin:auth_user_change", args=[admin_user.pk])
    data = _as_post(admin_client.get(url).context["adminform"].form.initial)
    data = {k: v for k, v in data.items() if k not in ("groups", "user_permissions")}
    response = _refused(admin_client.post(url, {**data, field: [HUGE]}))
    assert field in response.context["adminform"].form.errors


@pytest.mark.parametrize("field", ["day_of_month", "month_of_year", "hour"])
def test_a_schedule_with_a_negative_number_is_a_form_error(admin_client, db, field):
    """A crontab of `-5` shows the form again with the field's error, not a server error."""
    url = reverse("admin:django_celery_beat_crontabschedule_add")
    data = {"minute": "*", "hour": "*", "day_of_month": "*", "month_of_year": "*",
            "day_of_week": "*", "timezone": "UTC", field: "-5.4e+287"}  # fmt: skip
    response = _refused(admin_client.post(url, data))
    assert field in response.context["adminform"].form.errors


DEEP = ["[" * 5000, "[" * 5000 + "]" * 5000, "[" * 65 + "]" * 65]


@pytest.mark.parametrize("value", DEEP)
def test_deeply_nested_json_is_a_form_error(admin_client, demo, value):
    """An analytics event's properties nested deeper than 64 levels are the field's error."""
    event = shop.AnalyticsEvent.objects.first()
    url = reverse("admin:shop_analyticsevent_change", args=[event.pk])
    data = _as_post(admin_client.get(url).context["adminform"].form.initial)
    data["customer"] = event.customer_id or ""
    data["properties"] = value
    response = _refused(admin_client.post(url, data))
    assert "nested" in str(response.context["adminform"].form.errors["properties"])


@pytest.mark.parametrize("value", DEEP[:2])
def test_deeply_nested_policy_exclusions_are_a_form_error(admin_client, demo, value):
    """A retention policy's exclusions nested 5000 levels deep are the field's error."""
    policy = RetentionPolicy.objects.first()
    url = reverse("admin:retention_retentionpolicy_change", args=[policy.pk])
    data = _as_post(admin_client.get(url).context["adminform"].form.initial)
    data["exclusions"] = value
    response = _refused(admin_client.post(url, data))
    assert "exclusions" in response.context["adminform"].form.errors


def test_json_nested_64_levels_deep_is_accepted(admin_client, demo):
    """Nesting up to the limit is stored as posted."""
    event = shop.AnalyticsEvent.objects.first()
    url = reverse("admin:shop_analyticsevent_change", args=[event.pk])
    data = _as_post(admin_client.get(url).context["adminform"].form.initial)
    data["customer"] = event.customer_id or ""
    data["properties"] = "[" * 64 + "]" * 64
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    event.refresh_from_db()
    assert str(event.properties).count("[") == 64


def test_a_hold_on_a_record_id_of_the_wrong_type_is_a_form_error(admin_client, demo):
    """A hold on a customer with `object_id=abc` says there is no such customer."""
    url = reverse("admin:retention_legalhold_add")
    response = admin_client.post(
        url,
        {
            "content_type": ContentType.objects.get_for_model(shop.Customer).pk,
            "object_id": "abc",
            "ground": LegalHold.Ground.LEGAL_CLAIMS,
            "reason": "case 12",
        },
    )
    _refused(response)
    assert "There is no customer with id abc" in response.content.decode()


@pytest.mark.parametrize(
    "url_name,args,data",
    [
        ("admin:compliance_subject_export", "subject", {"reason": "a\x00b"}),
        ("admin:compliance_consent_record", "subject", {"purpose": "mark\x00eting"}),
    ],
)
def test_a_nul_byte_in_a_posted_value_is_a_400(admin_client, demo, url_name, args, data):
    """A NUL character, which no text column stores, is refused with 400 before any view."""
    customer = shop.Customer.objects.first()
    response = admin_client.post(reverse(url_name, args=[customer.pk]), data)
    _refused(response, 400)
    assert not SubjectExport.objects.filter(reason__contains="a").exists()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/retention/purgerun/?status=%00",
        "/admin/compliance/subjectexport/?status=%00",
        "/admin/shop/customer/?q=%00",
    ],
)
def test_a_nul_byte_in_the_query_string_is_a_400(admin_client, demo, url):
    """A NUL character in a filter is a 400, on every list."""
    _refused(admin_client.get(url), 400)


# Filters ---------------------------------------------------------------------------------


def test_a_date_beyond_the_calendar_in_the_changes_filter_is_a_form_error(admin_client, demo):
    """`until=9999-12-31` (whose next day does not exist) is refused by the filter form."""
    response = _refused(admin_client.get("/admin/versions/changes/?until=9999-12-31"))
    assert "until" in response.context["form"].errors


@pytest.mark.parametrize(
    "url",
    [
        "/admin/versions/ledgerentry/?created_at__year=99999",
        "/admin/compliance/subjectexport/?created_at__year=99999",
        "/admin/shop/customer/?created_at__year=99999",
        "/admin/shop/customer/?created_at__year=2024&created_at__month=13",
        "/admin/shop/order/?created_at__gte=abc",
        "/admin/shop/order/?customer__id__exact=abc",
        f"/admin/shop/order/?customer={HUGE}",
        f"/admin/shop/order/?customer__exact={HUGE}",
        f"/admin/shop/order/?customer__exact=-{HUGE}",
        f"/admin/shop/message/?sender={HUGE}",
        f"/admin/shop/session/?customer={HUGE}",
        f"/admin/compliance/subjectrequest/?subject={HUGE}",
    ],
)
def test_a_malformed_list_filter_is_refused_with_a_400(admin_client, demo, url):
    """A list filter's value that is not of its field's type is a 400, not a server error."""
    _refused(admin_client.get(url), 400)


# Consents ----------------------------------------------------------------------------------


def test_a_consent_record_with_granted_neither_yes_nor_no_is_refused(admin_client, demo):
    """`granted=maybe` is neither a grant nor a withdrawal: nothing is recorded."""
    customer = shop.Customer.objects.first()
    purpose = ConsentPurpose.objects.first()
    before = ConsentEvent.objects.count()
    response = admin_client.post(
        reverse("admin:compliance_consent_record", args=[customer.pk]),
        {"purpose": purpose.slug, "granted": "maybe", "post": "yes", "collection_point": "x"},
    )
    _refused(response, 400)
    assert ConsentEvent.objects.count() == before


def test_a_collection_point_longer_than_its_field_is_refused(admin_client, demo):
    """A 500-character collection point is refused with the field's limit; nothing recorded."""
    customer = shop.Customer.objects.first()
    purpose = ConsentPurpose.objects.filter(active=True).first()
    before = ConsentEvent.objects.count()
    response = admin_client.post(
        reverse("admin:compliance_consent_record", args=[customer.pk]),
        {"purpose": purpose.slug, "granted": "no", "post": "yes", "collection_point": "x" * 500},
    )
    _refused(response)
    assert "at most 100 characters" in response.content.decode()
    assert ConsentEvent.objects.count() == before


# Error pages -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/admin/no-such-page/", "/no-such-page/"])
def test_a_missing_page_is_a_404_in_the_admin_layout(admin_client, url):
    """A 404 shows the admin's header and the way back, like the 403 page."""
    response = admin_client.get(url)
    assert response.status_code == 404
    page = response.content.decode()
    assert 'id="site-name"' in page and "There is no page at this address." in page
    assert 'href="/admin/"' in page


def test_a_bad_request_says_what_was_wrong_in_the_admin_layout(admin_client, db):
    """A 400 shows the admin's header and the refused filter's reason."""
    response = admin_client.get("/admin/shop/customer/?created_at__year=99999")
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="site-name"' in page and "cannot be filtered so" in page
