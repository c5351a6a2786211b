"""Validation and labels of the sample domain's models."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from compliance.anonymisers import get_anonymiser
from compliance.checks import registry_check
from compliance.registry import registry
from shop.models import Customer, PasswordResetToken, Session


def _customer(**fields):
    return Customer(email="grace@example.org", full_name="Grace Hopper", **fields)


def test_phone_numbers_are_normalised_to_e164_and_shown_spaced(db):
    """A valid number typed any way is stored as E.164 and displayed in international form."""
    customer = _customer(phone="+44 (0)20 7946-0958")
    customer.full_clean()
    customer.save()
    stored = Customer.objects.filter(pk=customer.pk).values_list("phone", flat=True).get()
    assert stored == "+442079460958"
    customer.refresh_from_db()
    assert str(customer.phone) == "+44 20 7946 0958"
    assert Customer.history.get(id=customer.pk).phone == "+442079460958"


@pytest.mark.parametrize("phone", ["+44 1", "12345", "not a number", "+44 7700 900123"])
def test_invalid_phone_numbers_are_refused(db, phone):
    """Numbers libphonenumber does not know as valid (too short, no country, unassigned)."""
    with pytest.raises(ValidationError) as refused:
        _customer(phone=phone).full_clean()
    assert set(refused.value.message_dict) == {"phone"}


def test_phone_may_stay_empty(db):
    """The phone is optional."""
    _customer(phone="").full_clean()


def test_date_of_birth_in_the_future_is_refused(db):
    """Tomorrow is refused as a date of birth; today and earlier are accepted."""
    today = timezone.localdate()
    with pytest.raises(ValidationError) as refused:
        _customer(date_of_birth=today + timedelta(days=1)).full_clean()
    assert refused.value.message_dict == {"date_of_birth": ["This date is in the future."]}
    _customer(date_of_birth=today).full_clean()
    _customer(date_of_birth=today - timedelta(days=365 * 30)).full_clean()


def test_phone_field_keeps_its_blank_anonymiser(db, customer):
    """The registry check accepts "blank" on the phone field; it empties live and history rows."""
    field = Customer._meta.get_field("phone")
    anonymiser = get_anonymiser(registry.get(Customer).fields["phone"].anonymiser)
    assert anonymiser.name == "blank" and anonymiser.accepts(field)
    assert registry_check(None) == []
    history_field = Customer.history.model._meta.get_field("phone")
    Customer.objects.filter(pk=customer.pk).update(phone=anonymiser.expression(field))
    Customer.history.filter(id=customer.pk).update(phone=anonymiser.expression(history_field))
    customer.refresh_from_db()
    assert customer.phone == ""
    assert set(Customer.history.filter(id=customer.pk).values_list("phone", flat=True)) == {""}


def test_sessions_and_reset_tokens_are_labelled_by_customer_name_and_date(db, customer):
    """Labels name the customer and the date, not internal ids."""
    at = timezone.make_aware(timezone.datetime(2024, 10, 3, 14, 5))
    session = Session.objects.create(customer=customer, created_at=at, expires_at=at)
    token = PasswordResetToken.objects.create(customer=customer, created_at=at, expires_at=at)
    assert str(session) == "Session of Ada Lovelace, 3 Oct 2024, 14:05"
    assert str(token) == "Reset token of Ada Lovelace, 3 Oct 2024, 14:05"


def test_a_history_label_survives_its_customer(db, customer):
    """A session version whose customer row is gone is labelled with the customer's id."""
    at = timezone.now()
    session = Session.objects.create(customer=customer, expires_at=at)
    customer_id = customer.pk
    customer.hard_delete()
    version = Session.history.filter(id=session.pk).first()
    assert f"Session of customer {customer_id}," in str(version.instance)
