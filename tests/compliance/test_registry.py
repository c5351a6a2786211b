"""The registry: every sample model is declared; the anonymisers work set-based."""

import hashlib

import pytest
from django.apps import apps

from compliance.anonymisers import ANONYMISERS, get_anonymiser
from compliance.registry import AlreadyRegistered, ModelPrivacy, registry
from shop.models import AnalyticsEvent, Customer, Session


def test_every_sample_model_is_declared():
    """All nine shop models are in the registry, the subject model first among equals."""
    shop_models = set(apps.get_app_config("shop").get_models())
    shop_models = {m for m in shop_models if not m.__name__.startswith("Historical")}
    assert len(shop_models) == 9
    assert shop_models <= {entry.model for entry in registry.entries()}
    assert registry.subject_model() is Customer


def test_double_registration_is_refused():
    """A model can be declared only once."""
    with pytest.raises(AlreadyRegistered):
        registry.register(Customer, ModelPrivacy)


def test_unknown_anonymiser_lists_the_choices():
    """Asking for an anonymiser that does not exist names the ones that do."""
    with pytest.raises(ValueError, match="choose one of blank, email_placeholder"):
        get_anonymiser("shred")


def test_anonymisers_apply_set_based(db, customer):
    """Each customer anonymiser works as one UPDATE on the database."""
    customer.avatar_url = "https://example.org/a.png"
    customer.save()
    entry = registry.get(Customer)
    updates = {
        name: get_anonymiser(p.anonymiser).expression(Customer._meta.get_field(name))
        for name, p in entry.fields.items()
    }
    assert Customer.objects.filter(pk=customer.pk).update(**updates) == 1
    customer.refresh_from_db()
    assert customer.email == f"erased-{customer.pk}@erased.invalid"
    assert customer.full_name == "[redacted]"
    assert customer.phone == "" and customer.avatar_url == "" and customer.date_of_birth is None


def test_hash_and_json_anonymisers(db, customer):
    """hash keeps equality without the value; empty_json clears properties; null clears IPs."""
    from datetime import timedelta

    from django.utils import timezone

    session = Session.objects.create(
        customer=customer, user_agent="UA", expires_at=timezone.now() + timedelta(days=1)
    )
    token = session.token
    field = Session._meta.get_field("token")
    Session.objects.filter(pk=session.pk).update(token=ANONYMISERS["hash"].expression(field))
    session.refresh_from_db()
    assert session.token != token and len(session.token) == 64
    assert session.token != hashlib.sha256(token.encode()).hexdigest()  # keyed, not plain
    event = AnalyticsEvent.objects.create(
        customer=customer, name="login", properties={"path": "/"}, ip_address="192.0.2.1"
    )
    AnalyticsEvent.objects.filter(pk=event.pk).update(
        properties=ANONYMISERS["empty_json"].expression(
            AnalyticsEvent._meta.get_field("properties")
        ),
        ip_address=ANONYMISERS["null"].expression(AnalyticsEvent._meta.get_field("ip_address")),
    )
    event.refresh_from_db()
    assert event.properties == {} and event.ip_address is None
