"""The subject walk: one pass over the registry finds a person's rows and history rows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.selectors import SubjectAmbiguous, subject_find, subject_walk
from shop.models import Customer, Document, Message, Session


def _by_label(walk):
    return {rows.entry.label: rows for rows in walk}


def test_walk_finds_rows_on_every_subject_path_and_their_history(db, customer):
    """Rows through each path (sender and recipient alike) and each row's history are found."""
    other = Customer.objects.create(email="bob@example.org", full_name="Bob")
    Message.objects.create(sender=customer, recipient=other, sender_name="Ada", body="hi")
    Message.objects.create(sender=other, recipient=customer, sender_name="Bob", body="yo")
    Message.objects.create(sender=other, recipient=other, sender_name="Bob", body="self")
    Session.objects.create(customer=customer, expires_at=timezone.now() + timedelta(days=1))
    customer.full_name = "Ada King"
    customer.save()

    walk = _by_label(subject_walk(customer))

    assert walk["shop.Message"].rows.count() == 2
    assert walk["shop.Message"].history.count() == 2
    assert list(walk["shop.Customer"].rows) == [customer]
    assert walk["shop.Customer"].history.count() == 2  # created, changed
    assert walk["shop.Session"].rows.count() == 1
    assert not walk["shop.Order"].rows.exists()


def test_walk_includes_soft_deleted_rows(db, customer):
    """A soft-deleted document is still the subject's data: the walk finds it."""
    document = Document.objects.create(owner=customer, title="Invoice", content="…")
    Document.objects.filter(pk=document.pk).delete()

    walk = _by_label(subject_walk(customer))

    assert list(walk["shop.Document"].rows) == [document]


def test_find_by_primary_key_or_email(db, customer):
    """A subject is found by its key or, case-insensitively, by its email."""
    assert subject_find(str(customer.pk)) == customer
    assert subject_find("ADA@example.org") == customer
    assert subject_find("nobody@example.org") is None
    assert subject_find("  ") is None


def test_find_refuses_an_email_shared_by_two_subjects(db, customer):
    """A deleted customer's email can be reused: the email alone is then ambiguous."""
    Customer.objects.filter(pk=customer.pk).delete()
    Customer.objects.create(email="ada@example.org", full_name="Ada again")

    with pytest.raises(SubjectAmbiguous, match="give the primary key"):
        subject_find("ada@example.org")
