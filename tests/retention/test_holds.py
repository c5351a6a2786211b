"""Restriction of processing (Art. 18) holds on every path that changes rows: the ORM, a
management command, the admin, purges and exports; only the services that answer or lift a
restriction pass."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from compliance.services import (
    ComplianceRefused,
    consent_record,
    request_create,
    request_verify,
    subject_export,
)
from retention.checks import restriction_check
from retention.holds import ProcessingRestricted, restriction_override
from retention.models import LegalHold
from retention.services import hold_place, hold_release
from shop.models import Customer, Document, Message, Session
from tests.retention.test_purge import OLD, _policy, _sessions

RESTRICTED = re.escape("processing of their data is restricted (GDPR Art. 18)")


def _restrict(record, reason, ground):
    """A restriction of processing asked for by the data subject."""
    return hold_place(
        record=record, reason=reason, ground=ground, requested_by="the data subject", actor=None
    )


@pytest.fixture
def restricted(customer):
    """Ada, with a session and a document, whose processing is restricted."""
    Session.objects.create(customer=customer, expires_at=timezone.now() + timedelta(days=1))
    Document.objects.create(owner=customer, title="Invoice", content="…")
    _restrict(customer, "Accuracy of her address contested", LegalHold.Ground.ACCURACY_CONTESTED)
    return customer


@pytest.fixture
def other(db):
    bob = Customer.objects.create(email="bob@example.org", full_name="Bob Other")
    Session.objects.create(customer=bob, expires_at=timezone.now() + timedelta(days=1))
    return bob


def test_the_orm_refuses_every_change_to_a_restricted_subjects_rows(restricted, other):
    """save(), delete(), queryset update() and delete(), soft delete, restore and hard
    delete of the restricted subject's rows raise ProcessingRestricted and change nothing;
    another subject's rows change as before."""
    session = Session.objects.get(customer=restricted)
    document = Document.objects.get(owner=restricted)
    refused = [
        lambda: Session.objects.filter(customer=restricted).update(user_agent="x"),
        lambda: Session.objects.all().update(user_agent="x"),  # one of them is restricted
        lambda: Session.objects.filter(pk=session.pk).delete(),
        lambda: session.delete(),
        lambda: setattr(session, "user_agent", "x") or session.save(),
        lambda: setattr(restricted, "full_name", "Ada K.") or restricted.save(),
        lambda: Customer.objects.filter(pk=restricted.pk).delete(),  # soft
        lambda: restricted.delete(),  # soft, by the instance
        lambda: Customer.all_objects.filter(pk=restricted.pk).hard_delete(),
        lambda: document.delete(),
        lambda: Document.all_objects.filter(pk=document.pk).restore(),
    ]
    for change in refused:
        # A savepoint each: a refused delete aborts the collector's transaction.
        with pytest.raises(ProcessingRestricted, match=RESTRICTED), transaction.atomic():
            change()
    assert Session.objects.filter(customer=restricted, user_agent="").count() == 1
    restricted.refresh_from_db()
    assert restricted.full_name == "Ada Lovelace" and restricted.deleted_at is None
    assert Document.objects.filter(owner=restricted).count() == 1

    assert Session.objects.filter(customer=other).update(user_agent="y") == 1
    other.full_name = "Bob O."
    other.save()
    assert Customer.objects.filter(pk=other.pk).delete()[0] >= 1


def test_a_restriction_on_one_record_refuses_changes_to_that_record(customer):
    """A restriction placed on one document freezes it, and the soft delete of its owner,
    which would hide it too."""
    document = Document.objects.create(owner=customer, title="Contested", content="…")
    _restrict(document, "Content contested", LegalHold.Ground.ACCURACY_CONTESTED)
    with pytest.raises(ProcessingRestricted):
        Document.objects.filter(pk=document.pk).update(title="x")
    with pytest.raises(ProcessingRestricted):
        customer.delete()
    customer.full_name = "Ada K."
    customer.save()  # the customer row itself is not restricted


def test_new_rows_are_storage_and_a_lifted_restriction_frees_the_rows(restricted):
    """Inserting a row about a restricted subject is not refused; once the restriction is
    lifted, its rows change again."""
    Message.objects.create(sender=restricted, sender_name="Ada", body="hello")
    hold_release(hold=LegalHold.objects.get(), reason="Address verified", actor=None)

    assert Session.objects.filter(customer=restricted).update(user_agent="x") == 1


def test_a_delete_of_many_rows_checks_the_restriction_once(restricted, other):
    """A queryset delete reads the holds a fixed number of times, not once per row."""
    for _ in range(30):
        Session.objects.create(customer=other, expires_at=timezone.now())

    with CaptureQueriesContext(connection) as queries:
        deleted, _ = Session.objects.filter(customer=other).delete()

    assert deleted == 31
    reads = [q["sql"] for q in queries if "retention_legalhold" in q["sql"]]
    assert 1 <= len(reads) <= 3


def test_the_services_that_answer_a_restriction_pass_with_a_reason(restricted):
    """restriction_override lets a rectification through, and needs a reason."""
    with restriction_override(reason="Address corrected at the subject's request"):
        restricted.full_name = "Ada King"
        restricted.save()
    restricted.refresh_from_db()
    assert restricted.full_name == "Ada King"
    with pytest.raises(ValueError, match="needs a reason"), restriction_override(reason=" "):
        pass


def test_requests_and_consents_of_a_restricted_subject_are_still_handled(restricted, officer):
    """The subject's requests move on and their consent choices are recorded (Art. 7(3)):
    those records answer the subject's rights."""
    from compliance.models import ConsentPurpose, ConsentText
    from compliance.services import request_verify

    request = request_create(subject=restricted, kind="access", jurisdiction="gdpr", actor=None)
    request_verify(request=request, actor=None, method="email")
    purpose = ConsentPurpose.objects.create(slug="marketing", name="Marketing emails")
    ConsentText.objects.create(purpose=purpose, version=1, text="Emails", published_at=OLD)
    for granted in (True, False):
        consent_record(
            subject=restricted, purpose="marketing", granted=granted, collection_point="form"
        )


def test_a_management_command_is_refused(restricted):
    """A change run from a command (``manage.py shell -c``, as an operator's one-off fix) is
    refused the same way."""
    script = "from shop.models import Session; Session.objects.all().update(user_agent='bulk fix')"
    with pytest.raises(ProcessingRestricted, match=RESTRICTED):
        call_command("shell", command=script, stdout=StringIO())
    assert not Session.objects.filter(user_agent="bulk fix").exists()


def test_a_purge_leaves_a_restricted_subjects_rows_and_counts_them(restricted, other):
    """purge_expired skips the restricted subject's expired rows and counts them as held."""
    _sessions(restricted, OLD, 2)
    _sessions(other, OLD, 3)
    _policy(Session)

    call_command("purge_expired", stdout=StringIO())

    assert Session.objects.filter(customer=restricted).count() == 3
    assert not Session.objects.filter(customer=other, created_at__lt=OLD + timedelta(days=1))


def test_the_admin_refuses_a_bulk_action_with_a_message(admin_client, customer, other):
    """Restoring selected deleted customers, one of them restricted after its delete,
    changes nothing and says why; the same action without it restores."""
    Customer.objects.filter(pk__in=[customer.pk, other.pk]).delete()
    _restrict(customer, "Erasure opposed, restriction instead", LegalHold.Ground.UNLAWFUL_KEPT)
    url = reverse("admin:shop_customer_changelist") + "?state=deleted"
    data = {"action": "restore_selected", "post": "yes"}

    response = admin_client.post(url, {**data, "_selected_action": [customer.pk, other.pk]})

    assert response.status_code == 302
    page = admin_client.get(response.url).content.decode()
    assert "Cannot restore 1 customer: processing of their data is restricted" in page
    assert Customer.deleted_objects.filter(pk__in=[customer.pk, other.pk]).count() == 2
    response = admin_client.post(url, {**data, "_selected_action": [other.pk]})
    assert response.status_code == 302
    assert Customer.objects.filter(pk=other.pk).exists()


def test_an_export_of_a_restricted_subject_answers_their_own_request_only(
    restricted, officer, settings, tmp_path
):
    """An export is processing: without the subject's request it is refused."""
    settings.COMPLIANCE_EXPORT_DIR = tmp_path / "exports"
    with pytest.raises(ComplianceRefused, match="restricted"):
        subject_export(subject=restricted, actor=None, reason="marketing analysis")
    request = request_create(subject=restricted, kind="access", jurisdiction="gdpr", actor=None)
    request = request_verify(request=request, actor=officer, method="email")

    export = subject_export(subject=restricted, actor=None, reason="Art. 15", request=request)

    assert export.status == export.Status.DONE


def test_every_registered_model_of_the_project_refuses_bulk_changes():
    """retention.W001 finds no registered model whose queryset lets restricted rows change."""
    assert restriction_check(None) == []
