"""Anonymisers: one SQL expression each, the same on a record and on its history rows."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from compliance.anonymisers import ANONYMISERS, REDACTED
from shop.models import Customer, Order

PERSONAL = ["email", "full_name", "phone", "avatar_url", "date_of_birth"]


def _anonymise(queryset, field, anonymiser):
    queryset.update(**{field.name: anonymiser.expression(field)})


def _values(customer, name):
    live = Customer.objects.filter(pk=customer.pk).values_list(name, flat=True).get()
    history = list(customer.history.values_list(name, flat=True))
    return live, history


@pytest.fixture
def versioned(db):
    """A customer with three history rows, whose history ids are not its primary key."""
    other = Customer.objects.create(email="other@example.org", full_name="Other")
    for n in range(3):
        other.full_name = f"Other {n}"
        other.save()  # history ids now run ahead of customer ids
    customer = Customer.objects.create(
        email="grace@example.org", full_name="Grace Hopper", phone="+1 555", avatar_url="https://x"
    )
    customer.date_of_birth = timezone.now().date() - timedelta(days=365 * 40)
    customer.save()
    customer.date_of_birth -= timedelta(days=1)  # a change (the test aligns birth dates)
    customer.save()
    assert customer.history.count() == 3
    assert customer.pk not in set(customer.history.values_list("history_id", flat=True))
    return customer


@pytest.mark.parametrize("name", sorted(ANONYMISERS))
def test_each_anonymiser_gives_a_record_and_its_history_rows_the_same_value(versioned, name):
    """Applied with QuerySet.update to the customer and to Customer.history, every field it
    accepts ends up equal on both (values equal beforehand, as `hash` depends on them)."""
    anonymiser = ANONYMISERS[name]
    Customer.history.filter(id=versioned.pk).update(date_of_birth=versioned.date_of_birth)
    applied = 0
    for field_name in PERSONAL:
        field = Customer._meta.get_field(field_name)
        if not anonymiser.accepts(field):
            continue
        applied += 1
        before = _values(versioned, field_name)
        _anonymise(Customer.objects.filter(pk=versioned.pk), field, anonymiser)
        _anonymise(versioned.history.all(), field, anonymiser)
        live, history = _values(versioned, field_name)
        assert (live, history) != before, f"{name} left {field_name} as it was"
        assert history == [live] * 3, f"{name} on {field_name}"
    assert applied or name == "empty_json"  # Customer has no JSON field


def test_email_placeholder_is_built_from_the_record_id_in_every_version(versioned):
    """Versions holding different addresses all become erased-<customer id>@erased.invalid."""
    versioned.email = "grace.hopper@example.org"
    versioned.save()
    field = Customer._meta.get_field("email")
    placeholder = ANONYMISERS["email_placeholder"]
    _anonymise(Customer.objects.filter(pk=versioned.pk), field, placeholder)
    _anonymise(versioned.history.all(), field, placeholder)
    live, history = _values(versioned, "email")
    assert live == f"erased-{versioned.pk}@erased.invalid"
    assert history == [live] * 4


def test_email_placeholder_built_from_a_history_field_uses_the_record_id(versioned):
    """The history model's own field gives the same placeholder: not the history id."""
    field = Customer.history.model._meta.get_field("email")
    _anonymise(versioned.history.all(), field, ANONYMISERS["email_placeholder"])
    assert set(versioned.history.values_list("email", flat=True)) == {
        f"erased-{versioned.pk}@erased.invalid"
    }


def test_anonymisers_respect_max_length(versioned):
    """Short fields get a cut value, on PostgreSQL too (where a longer one is an error)."""
    order = Order.objects.create(
        customer=versioned,
        number="A-1",
        total="1.00",
        shipping_name="Grace Hopper",
        shipping_address="1 Navy Way",
        shipping_postcode="12345",
        shipping_city="Arlington",
        shipping_country="US",
    )
    rows = Order.objects.filter(pk=order.pk)
    for field_name, name in [
        ("shipping_country", "redact"),  # max_length 2
        ("shipping_postcode", "email_placeholder"),  # max_length 20
        ("currency", "hash"),  # max_length 3
    ]:
        field = Order._meta.get_field(field_name)
        _anonymise(rows, field, ANONYMISERS[name])
        _anonymise(order.history.all(), field, ANONYMISERS[name])
        value = rows.values_list(field_name, flat=True).get()
        assert 0 < len(value) <= field.max_length, field_name
        assert set(order.history.values_list(field_name, flat=True)) == {value}
    assert rows.values_list("shipping_country", flat=True).get() == REDACTED[:2]
    assert (
        rows.values_list("shipping_postcode", flat=True).get()
        == f"erased-{order.pk}@erased.invalid"[:20]
    )


def _hash_of(customer):
    field = Customer._meta.get_field("phone")
    _anonymise(Customer.objects.filter(pk=customer.pk), field, ANONYMISERS["hash"])
    value = Customer.objects.values_list("phone", flat=True).get(pk=customer.pk)
    Customer.objects.filter(pk=customer.pk).update(phone="+1 555")
    return value


def test_hash_is_keyed_by_the_pseudonym_secret_not_the_secret_key(versioned):
    """Rotating SECRET_KEY keeps every pseudonym; another PSEUDONYM_SECRET changes them."""
    key = "p" * 25 + "q" * 25
    with override_settings(PSEUDONYM_SECRET=key, SECRET_KEY="a" * 50):
        first = _hash_of(versioned)
    with override_settings(PSEUDONYM_SECRET=key, SECRET_KEY="b" * 50):
        assert _hash_of(versioned) == first
    with override_settings(PSEUDONYM_SECRET=key + "r", SECRET_KEY="b" * 50):
        assert _hash_of(versioned) != first
    assert len(first) == 40 and first != "+1 555"  # phone's max_length
