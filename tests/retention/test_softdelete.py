"""Soft delete: hidden, not lost; set-based; related managers, uniqueness and restore."""

import pytest
from django import forms
from django.db import connection, models
from django.test.utils import CaptureQueriesContext, isolate_apps

from retention.checks import soft_delete_errors
from retention.softdelete import NOT_DELETED, SoftDeleteModel
from shop.models import Customer, Document
from versions.context import change_context


@pytest.fixture
def docs(customer):
    return [
        Document.objects.create(owner=customer, title=f"Doc {i}", content="x") for i in range(3)
    ]


def test_objects_hides_deleted_rows_and_the_other_managers_do_not(customer):
    """After delete() the row is gone from objects, present in all_objects and deleted_objects."""
    customer.delete()
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert Customer.all_objects.filter(pk=customer.pk).exists()
    assert list(Customer.deleted_objects.values_list("pk", flat=True)) == [customer.pk]
    customer.refresh_from_db()
    assert customer.is_deleted


def test_queryset_delete_is_one_update_per_model(db):
    """Deleting 20 customers with 40 documents issues one UPDATE per model, not one per row."""
    owners = [
        Customer.objects.create(email=f"c{i}@example.org", full_name=f"C{i}") for i in range(20)
    ]
    for owner in owners:
        Document.objects.create(owner=owner, title="a", content="x")
        Document.objects.create(owner=owner, title="b", content="y")
    with CaptureQueriesContext(connection) as queries:
        total, per_model = Customer.objects.filter(email__startswith="c").delete()
    updates = [q["sql"] for q in queries if "UPDATE " in q["sql"]]
    assert len(updates) == 2  # customers, documents (with their history on PostgreSQL)
    assert (total, per_model) == (60, {"shop.Customer": 20, "shop.Document": 40})
    assert not Document.objects.exists()


def test_update_through_objects_never_touches_deleted_rows(customer, docs):
    """objects.update() leaves a deleted row as it was."""
    docs[0].delete()
    Document.objects.update(title="renamed")
    assert Document.all_objects.get(pk=docs[0].pk).title == "Doc 0"
    assert set(Document.objects.values_list("title", flat=True)) == {"renamed"}


def test_related_managers_and_prefetch_never_return_deleted_rows(customer, docs):
    """customer.documents and prefetch_related('documents') skip the deleted document."""
    docs[1].delete()
    assert {d.pk for d in customer.documents.all()} == {docs[0].pk, docs[2].pk}
    fetched = Customer.objects.prefetch_related("documents").get(pk=customer.pk)
    assert {d.pk for d in fetched.documents.all()} == {docs[0].pk, docs[2].pk}
    prefetched = Customer.objects.prefetch_related(
        models.Prefetch("documents", queryset=Document.objects.order_by("title"))
    ).get(pk=customer.pk)
    assert [d.title for d in prefetched.documents.all()] == ["Doc 0", "Doc 2"]


def test_deleted_customers_email_can_be_used_again(customer):
    """The partial unique constraint counts live rows only: the email signs up again."""
    customer.delete()
    again = Customer.objects.create(email=customer.email, full_name="Ada again")
    assert again.pk != customer.pk


def test_model_form_validates_the_partial_unique_constraint(customer):
    """A form refuses a live customer's email and accepts a deleted customer's."""

    class CustomerForm(forms.ModelForm):
        class Meta:
            model = Customer
            fields = ["email", "full_name"]

    taken = CustomerForm(data={"email": customer.email, "full_name": "Copy"})
    assert not taken.is_valid()
    assert "already exists" in str(taken.errors)
    customer.delete()
    assert CustomerForm(data={"email": customer.email, "full_name": "Copy"}).is_valid()


def test_customer_delete_hides_its_documents_and_restore_brings_back_that_set(customer, docs):
    """Restore brings back what the customer's delete hid, not a document deleted before."""
    docs[0].delete()  # deleted earlier, on its own
    customer.delete()
    assert Document.objects.count() == 0
    hidden = Document.all_objects.filter(pk__in=[docs[1].pk, docs[2].pk])
    assert {d.deletion_id for d in hidden} == {Customer.all_objects.get(pk=customer.pk).deletion_id}
    total, per_model = customer.restore()
    assert per_model == {"shop.Customer": 1, "shop.Document": 2}
    assert set(Document.objects.values_list("pk", flat=True)) == {docs[1].pk, docs[2].pk}
    assert Document.deleted_objects.get().pk == docs[0].pk


def test_soft_delete_and_restore_leave_history_rows_with_the_context(officer, customer):
    """Both write a '~' history row per row, naming user, IP and reason, set-based."""
    with change_context(user=officer, ip="192.0.2.44", reason="duplicate account"):
        customer.delete()
    deleted = customer.history.latest("history_id")
    assert deleted.history_type == "~" and deleted.deleted_at is not None
    assert (deleted.history_user_id, deleted.history_ip, deleted.history_change_reason) == (
        officer.pk,
        "192.0.2.44",
        "duplicate account",
    )
    assert deleted.deleted_by_id == officer.pk
    with change_context(user=officer, reason="deleted by mistake"):
        customer.restore()
    restored = customer.history.latest("history_id")
    assert restored.deleted_at is None and restored.history_change_reason == "deleted by mistake"
    assert customer.history.count() == 3  # created, deleted, restored


def test_hard_delete_removes_the_row_and_records_a_deletion(customer):
    """hard_delete() deletes for good and simple-history keeps a '-' row."""
    customer.delete()
    customer.hard_delete()
    assert not Customer.all_objects.filter(pk=customer.pk).exists()
    assert (
        customer.history.model.objects.filter(id=customer.pk).latest("history_id").history_type
        == "-"
    )


@isolate_apps("retention")
def test_check_flags_unique_true_on_a_soft_delete_model():
    """retention.E001 names a plain unique field; a partial constraint passes."""

    class Badge(SoftDeleteModel):
        code = models.CharField(max_length=10, unique=True)

        class Meta(SoftDeleteModel.Meta):
            app_label = "retention"

    class Token(SoftDeleteModel):
        code = models.CharField(max_length=10)

        class Meta(SoftDeleteModel.Meta):
            app_label = "retention"
            constraints = [
                models.UniqueConstraint(fields=["code"], condition=NOT_DELETED, name="tok_live")
            ]

    errors = soft_delete_errors(Badge)
    assert [e.id for e in errors] == ["retention.E001"]
    assert "retention.Badge.code is unique=True" in errors[0].msg
    assert soft_delete_errors(Token) == []


@isolate_apps("retention")
def test_check_flags_a_meta_that_drops_the_permissions():
    """retention.E002: a Meta not inheriting SoftDeleteModel.Meta loses view_deleted/hard_delete."""

    class Note(SoftDeleteModel):
        class Meta:
            app_label = "retention"

    assert [e.id for e in soft_delete_errors(Note)] == ["retention.E002"]


def test_the_project_passes_the_soft_delete_checks(db):
    """The sample domain's soft-delete models declare uniqueness partially."""
    assert soft_delete_errors(Customer) == [] and soft_delete_errors(Document) == []
