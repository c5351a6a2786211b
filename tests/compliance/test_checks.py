"""System checks: unclassified personal fields and invalid declarations are errors."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import models
from django.test import override_settings
from django.test.utils import isolate_apps

from compliance.checks import (
    _declaration_errors,
    looks_personal,
    pseudonym_secret_check,
    registry_check,
)
from compliance.registry import Erasure, ModelPrivacy, Personal, registry
from shop.models import Customer, Order, Session

ROOT = Path(__file__).resolve().parents[2]


def test_the_project_passes_its_own_checks():
    """The sample domain declares all of its personal data."""
    assert [e for e in registry_check(None) if e.id.startswith("compliance.")] == []


def test_unclassified_email_fails_manage_py_check():
    """`manage.py check` exits non-zero with compliance.E001 naming model and field."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--settings=tests.leaky_settings"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.leaky_settings"},
        timeout=120,
    )
    assert result.returncode != 0
    assert "compliance.E001" in result.stderr
    assert "leaky.Contact.email looks like personal data" in result.stderr
    assert "leaky.Contact.display_name looks like personal data" in result.stderr
    assert "leaky.Contact.notes" not in result.stderr


def _field(cls, name):
    field = cls()
    field.set_attributes_from_name(name)
    return field


@pytest.mark.parametrize(
    ("field", "personal"),
    [
        (_field(models.CharField, "email"), True),
        (_field(models.CharField, "billing_email"), True),
        (_field(models.CharField, "user_agent"), True),
        (_field(models.CharField, "client_ip"), True),
        (_field(models.DateField, "date_of_birth"), True),
        (_field(models.EmailField, "contact"), True),
        (_field(models.GenericIPAddressField, "origin"), True),
        (_field(models.CharField, "zipcode"), True),
        (_field(models.CharField, "title"), False),
        (_field(models.CharField, "shipping_method"), False),
        (_field(models.CharField, "description"), False),
    ],
)
def test_personal_name_heuristic(field, personal):
    """Names and types that suggest personal data are caught, others are not."""
    assert looks_personal(field) is personal


@pytest.fixture
def swap(request):
    """Replace a model's declaration for one test, then restore it."""
    saved = {}

    def _swap(model, cls):
        saved.setdefault(model, registry.get(model))
        registry.unregister(model)
        registry.register(model, cls)

    yield _swap
    for model, entry in saved.items():
        registry.unregister(model)
        registry.register(model, type(entry))


def _ids(errors):
    return sorted({e.id for e in errors})


def test_unknown_field_and_bad_anonymiser_are_reported(swap):
    """A declared field that does not exist, or an anonymiser that cannot fit, is an error."""

    class Broken(ModelPrivacy):
        subject = "customer"
        fields = {
            "ip_adress": Personal("online_identifier", anonymiser="null"),
            "user_agent": Personal("online_identifier", anonymiser="null"),  # not nullable
            "token": Personal("credential", anonymiser="shred"),
        }

    swap(Session, Broken)
    errors = registry_check(None)
    messages = " ".join(e.msg for e in errors)
    assert {"compliance.E001", "compliance.E002", "compliance.E004"} <= set(_ids(errors))
    assert "shop.Session.ip_adress is declared personal but" in messages
    assert "anonymiser 'null' needs a nullable field" in messages
    assert "unknown anonymiser 'shred'" in messages
    assert "shop.Session.ip_address looks like personal data" in messages


def test_subject_path_must_reach_the_subject(swap):
    """A subject path that is not a relation to the subject model is an error."""

    class WrongPath(ModelPrivacy):
        subject = ["customer", "number"]
        fields = dict(registry.get(Order).fields)

    swap(Order, WrongPath)
    errors = [e for e in registry_check(None) if e.id == "compliance.E003"]
    assert len(errors) == 1 and "'number' in 'number' is not a relation" in errors[0].msg


def test_a_field_of_a_model_about_several_people_says_whose_it_is(swap):
    """On a model with several subject paths, a personal field that does not say which path
    it is about, or names one that is not a subject path, is compliance.E009."""
    from shop.models import Message

    class Unsaid(ModelPrivacy):
        subject = ["sender", "recipient"]
        fields = {
            "sender_name": Personal("identity", about="author"),
            "body": Personal("content"),
        }

    swap(Message, Unsaid)
    errors = [e for e in registry_check(None) if e.id == "compliance.E009"]
    messages = sorted(e.msg for e in errors)
    assert len(errors) == 2
    assert "shop.Message.body: the model has several subject paths" in messages[0]
    assert "shop.Message.sender_name is declared about 'author'" in messages[1]


def test_the_sample_messages_say_whom_each_field_is_about():
    """The sample domain's messages: the sender's name is the sender's, the body both's."""
    from shop.models import Message

    entry = registry.get(Message)
    assert entry.field_paths("sender_name") == ["sender"]
    assert entry.field_paths("body") == ["sender", "recipient"]
    assert not [e for e in registry_check(None) if e.id == "compliance.E009"]


def test_a_subject_key_field_must_be_a_text_field(swap):
    """subject_key_field names the text field keeping the subject's key, else E010 (its own
    id: E003 is a subject path that does not reach the subject)."""

    class WrongKey(ModelPrivacy):
        subject = "customer"
        fields = dict(registry.get(Order).fields)
        subject_key_field = "total"

    swap(Order, WrongKey)
    errors = [e for e in registry_check(None) if e.id == "compliance.E010"]
    assert len(errors) == 1 and "subject_key_field 'total' is not a text field" in errors[0].msg
    assert not [e for e in registry_check(None) if e.id == "compliance.E003"]


def test_retain_needs_a_legal_ground_and_basis_a_date(swap):
    """erasure='retain' without a legal ground, or a non-date retention basis, is an error."""

    class NoGround(ModelPrivacy):
        subject = "customer"
        fields = dict(registry.get(Order).fields)
        erasure = Erasure.RETAIN
        retention_basis = "number"

    swap(Order, NoGround)
    assert _ids(registry_check(None)) == ["compliance.E005", "compliance.E006"]


@override_settings(COMPLIANCE_SUBJECT_MODEL="shop.Nope")
def test_unknown_subject_model_is_reported():
    """A subject model setting that names no model says how to fix it."""
    errors = registry_check(None)
    assert _ids(errors) == ["compliance.E007"]
    assert "'app_label.ModelName'" in errors[0].hint


def test_checks_are_registered_with_django():
    """The registry check runs as part of `manage.py check`."""
    assert registry_check in checks.registry.registry.get_checks()


def _e004(errors):
    return [e.msg for e in errors if e.id == "compliance.E004"]


def test_constant_anonymiser_on_a_unique_field_is_refused(swap):
    """redact on Customer.email (unique) would make the second erasure an IntegrityError."""

    class Redacted(ModelPrivacy):
        subject = "pk"
        fields = {**registry.get(Customer).fields, "email": Personal("contact")}

    swap(Customer, Redacted)
    messages = _e004(registry_check(None))
    assert messages == [
        "shop.Customer.email is unique but anonymiser 'redact' writes the same value into "
        "every row: the second erasure would fail."
    ]


@pytest.mark.parametrize(
    ("anonymiser", "needs"),
    [("email_placeholder", "at least 42"), ("hash", "at least 32"), ("blank", "same value")],
)
def test_anonymiser_without_room_in_a_unique_field_is_refused(swap, anonymiser, needs):
    """Order.number is unique and 20 long: too short for a whole placeholder or digest."""

    class Numbered(ModelPrivacy):
        subject = "customer"
        fields = {**registry.get(Order).fields, "number": Personal("financial", anonymiser)}
        erasure = Erasure.RETAIN
        legal_ground = "Tax law."

    swap(Order, Numbered)
    [message] = _e004(registry_check(None))
    assert message.startswith(f"shop.Order.number is unique but anonymiser '{anonymiser}'")
    assert needs in message


def test_unique_fields_that_stay_unique_pass(swap):
    """email_placeholder on a unique email and hash on a unique 64-long token are accepted."""
    assert registry.get(Customer).fields["email"].anonymiser == "email_placeholder"
    assert registry.get(Session).fields["token"].anonymiser == "hash"
    assert _e004(registry_check(None)) == []


@isolate_apps("shop")
def test_a_one_field_unique_constraint_counts_as_unique():
    """A UniqueConstraint on the field alone is checked like unique=True; one on several is not."""

    class Member(models.Model):
        handle = models.CharField(max_length=100)
        nickname = models.CharField(max_length=100)
        team = models.CharField(max_length=100)

        class Meta:
            app_label = "shop"
            constraints = [
                models.UniqueConstraint(fields=["handle"], name="one"),
                models.UniqueConstraint(fields=["nickname", "team"], name="two"),
            ]

        def __str__(self):
            return self.handle

    class MemberPrivacy(ModelPrivacy):
        subject = "pk"
        fields = {"handle": Personal("identity"), "nickname": Personal("identity")}

    messages = _e004(_declaration_errors(MemberPrivacy(Member), Member))
    assert len(messages) == 1 and messages[0].startswith("shop.Member.handle is unique")


LONG_KEY = "Qm3vT9xLr2Wn8KcJ5pHd7sYb4gFz6aEu1oNi0kRt" * 2  # 80 characters


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("", "PSEUDONYM_SECRET is not set"),
        ("same-as-the-secret-key-" * 3, "the same as SECRET_KEY"),
        ("short-but-random-Zx81", "shorter than 50 characters"),
        ("ab" * 40, "fewer than 5 different characters"),
    ],
)
def test_pseudonym_secret_must_be_its_own_long_key(secret, problem):
    """check --deploy refuses a missing, reused, short or uniform PSEUDONYM_SECRET."""
    with override_settings(PSEUDONYM_SECRET=secret, SECRET_KEY="same-as-the-secret-key-" * 3):
        [error] = pseudonym_secret_check(None)
    assert error.id == "compliance.E008" and problem in error.msg


def test_pseudonym_secret_of_its_own_passes():
    """A long random key that is not SECRET_KEY passes."""
    with override_settings(PSEUDONYM_SECRET=LONG_KEY):
        assert pseudonym_secret_check(None) == []


def test_pseudonym_secret_is_a_deployment_check():
    """It runs under `check --deploy`, where an unset key stops the deployment check."""
    assert pseudonym_secret_check not in checks.registry.registry.get_checks()
    assert pseudonym_secret_check in checks.registry.registry.get_checks(
        include_deployment_checks=True
    )
    with override_settings(PSEUDONYM_SECRET=""), pytest.raises(SystemCheckError) as raised:
        call_command("check", deploy=True, tags=["security"], stdout=StringIO())
    assert "compliance.E008" in str(raised.value)
