"""System checks: unclassified personal fields and invalid declarations are errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks
from django.db import models
from django.test import override_settings

from compliance.checks import looks_personal, registry_check
from compliance.registry import Erasure, ModelPrivacy, Personal, registry
from shop.models import Order, Session

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
