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


# --- other people's data (GDPR Art. 15(4)) -------------------------------------------------


@pytest.fixture
def conversation(db, customer, settings, tmp_path):
    """Ada (the customer) and Bob write to each other; each message is changed once, so the
    history rows carry the same fields."""
    settings.COMPLIANCE_EXPORT_DIR = tmp_path / "exports"
    bob = Customer.objects.create(email="bob@example.org", full_name="Bob Other")
    to_bob = Message.objects.create(
        sender=customer, recipient=bob, sender_name="Ada Lovelace", body="lunch?"
    )
    to_ada = Message.objects.create(
        sender=bob, recipient=customer, sender_name="Bob Other", body="yes, at one"
    )
    for message in (to_bob, to_ada):
        message.body += "!"
        message.save()
    return customer, bob, to_bob, to_ada


def _export(subject):
    """The JSON files of `subject`'s export, by name, and the ZIP's whole text."""
    import json
    import zipfile

    from compliance.services import export_path, subject_export

    export = subject_export(subject=subject, actor=None, reason="Art. 15 request")
    with zipfile.ZipFile(export_path(export)) as archive:
        files = {name: archive.read(name).decode() for name in archive.namelist()}
    data = {name: json.loads(text) for name, text in files.items() if name.endswith(".json")}
    return data, "\n".join(files.values())


def _by_pk(rows, key="id"):
    return {row[key]: row for row in rows}


def test_gdpr_art_15_4_a_recipients_export_leaves_out_the_senders_name_and_key(conversation):
    """The recipient of Bob's message gets the message and its body, but not Bob's name or
    customer id, in its rows and its history rows, in JSON and CSV alike; their own
    message keeps their name but not Bob's id as its recipient."""
    ada, bob, to_bob, to_ada = conversation

    data, text = _export(ada)

    rows = _by_pk(data["shop.message.json"])
    assert rows[to_ada.pk]["sender_name"] == "[redacted]"
    assert rows[to_ada.pk]["sender_id"] is None
    assert rows[to_ada.pk]["recipient_id"] == ada.pk
    assert rows[to_ada.pk]["body"] == "yes, at one!"
    assert rows[to_bob.pk]["sender_name"] == "Ada Lovelace"
    assert rows[to_bob.pk]["sender_id"] == ada.pk
    assert rows[to_bob.pk]["recipient_id"] is None
    history = data["shop.message.history.json"]
    assert len(history) == 4
    for row in history:
        assert bob.pk not in (row["sender_id"], row["recipient_id"])
        if row["id"] == to_ada.pk:
            assert row["sender_name"] == "[redacted]"
    assert "Bob Other" not in text  # nowhere: JSON, CSV, history or manifest


def test_gdpr_art_15_4_a_senders_export_keeps_their_name_and_key(conversation):
    """The sender's export of the same message keeps their own name and id."""
    ada, bob, to_bob, to_ada = conversation

    data, text = _export(bob)

    rows = _by_pk(data["shop.message.json"])
    assert rows[to_ada.pk]["sender_name"] == "Bob Other"
    assert rows[to_ada.pk]["sender_id"] == bob.pk
    assert rows[to_ada.pk]["recipient_id"] is None
    assert rows[to_bob.pk]["sender_name"] == "[redacted]"
    assert "Ada Lovelace" not in text


def test_a_message_to_oneself_is_all_ones_own(db, customer, settings, tmp_path):
    """A note to oneself is about its writer through both paths: nothing is left out."""
    settings.COMPLIANCE_EXPORT_DIR = tmp_path / "exports"
    note = Message.objects.create(
        sender=customer, recipient=customer, sender_name="Ada Lovelace", body="remember"
    )

    data, _ = _export(customer)

    row = _by_pk(data["shop.message.json"])[note.pk]
    assert (row["sender_name"], row["sender_id"], row["recipient_id"]) == (
        "Ada Lovelace",
        customer.pk,
        customer.pk,
    )
