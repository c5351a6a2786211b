"""A record's versions with field-level changes, and the `history` command that prints them."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from shop.models import Customer
from versions.context import change_context
from versions.selectors import record_versions


def test_versions_list_each_change_oldest_first(db, officer, customer):
    """Creation shows the values set; each later version only the fields it changed."""
    with change_context(user=officer, reason="Typo"):
        customer.full_name = "Ada King"
        customer.save()
    customer_pk = customer.pk
    customer.delete()  # soft delete: a change of deleted_at

    versions = record_versions(Customer, customer_pk)

    assert [v.action for v in versions] == ["created", "changed", "changed"]
    assert ("full_name", "Ada Lovelace", "Ada King") in [
        (c.field, c.old, c.new) for c in versions[1].changes
    ]
    assert [c.field for c in versions[1].changes] == ["full_name", "updated_at"]
    assert "deleted_at" in [c.field for c in versions[2].changes]
    assert "email" in [c.field for c in versions[0].changes]


def test_history_command_prints_versions_with_diffs(db, officer, customer):
    """`history shop.Customer <pk>` prints who, why and old -> new per changed field."""
    with change_context(user=officer, reason="Typo"):
        customer.full_name = "Ada King"
        customer.save()
    out = StringIO()

    call_command("history", "shop.Customer", str(customer.pk), stdout=out)

    text = out.getvalue()
    assert f"shop.Customer #{customer.pk}: 2 version(s)" in text
    assert "changed  by officer" in text and ": Typo" in text
    assert "name: 'Ada Lovelace' -> 'Ada King'" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["shop.Nothing", "1"], "No model 'shop.Nothing'"),
        (["auth.Group", "1"], "keeps no history"),
        (["shop.Customer", "abc"], "not a valid primary key"),
        (["shop.Customer", "999"], "has no versions"),
    ],
)
def test_history_command_refuses_bad_input_clearly(db, args, message):
    """Unknown model, untracked model, malformed or unknown key: a clear error."""
    with pytest.raises(CommandError, match=message):
        call_command("history", *args, stdout=StringIO())


# Restore ----------------------------------------------------------------------------------


def _renamed(customer, name, actor=None):
    with change_context(user=actor, reason="rename"):
        customer.full_name = name
        customer.save()
    return customer.history.first()


def test_restore_gives_the_old_values_as_a_new_version_with_a_ledger_entry(db, officer, customer):
    """The record takes the version's values; a new version carries the reason; a ledger
    entry names the fields, never the values."""
    from versions.models import LedgerAction, LedgerEntry
    from versions.services import version_restore

    first = customer.history.get()
    _renamed(customer, "Wrong name")

    version_restore(record=customer, history_id=first.pk, actor=officer, reason="Undo typo")

    customer.refresh_from_db()
    assert customer.full_name == "Ada Lovelace"
    newest = customer.history.first()
    assert (newest.history_type, newest.history_change_reason) == ("~", "Undo typo")
    entry = LedgerEntry.objects.get(action=LedgerAction.RESTORE)
    assert entry.details["fields"] == ["full_name"]
    assert "Ada" not in str(entry.details) + str(entry.counts)


@pytest.mark.parametrize("case", ["other_record", "unknown", "stale", "no_reason"])
def test_restore_refuses_bad_requests_and_changes_nothing(db, officer, customer, case):
    """Another record's version, an unknown one, a stale preview, no reason: refused."""
    from versions.selectors import RestoreRefused
    from versions.services import version_restore

    other = Customer.objects.create(email="bob@example.org", full_name="Bob")
    first = customer.history.get()
    latest = _renamed(customer, "Wrong name")
    kwargs = {"record": customer, "history_id": first.pk, "actor": officer, "reason": "x"}
    if case == "other_record":
        kwargs["history_id"] = other.history.get().pk
    elif case == "unknown":
        kwargs["history_id"] = 999_999
    elif case == "stale":
        kwargs["expected_latest"] = latest.pk
        _renamed(customer, "Another name")
    else:
        kwargs["reason"] = " "
    before = customer.history.count()

    with pytest.raises(RestoreRefused):
        version_restore(**kwargs)

    customer.refresh_from_db()
    assert customer.full_name != "Ada Lovelace"
    assert customer.history.count() == before


def test_restore_preview_names_unique_clashes_and_missing_targets(db, officer, customer):
    """A unique email taken since, and a foreign-key target gone, block the restore."""
    from shop.models import Session
    from versions.selectors import restore_preview

    first = customer.history.get()
    customer.email = "ada.new@example.org"
    customer.save()
    Customer.objects.create(email="ada@example.org", full_name="Someone else")
    assert any("already exists" in p for p in restore_preview(customer, first.pk).problems)

    from datetime import timedelta

    from django.utils import timezone

    other = Customer.objects.create(email="c@example.org", full_name="C")
    session = Session.objects.create(customer=other, expires_at=timezone.now() + timedelta(1))
    version = session.history.get()
    session.customer = customer
    session.save()
    Customer.all_objects.filter(pk=other.pk).delete()  # soft delete of the old target
    problems = restore_preview(session, version.pk).problems
    assert any(f"customer #{other.pk} is deleted" in p for p in problems)


def test_restore_refuses_a_restricted_record(db, officer, customer):
    """Processing restricted (Art. 18): no restore until the restriction is lifted."""
    from retention.models import LegalHold
    from retention.services import hold_place
    from versions.selectors import RestoreRefused
    from versions.services import version_restore

    first = customer.history.get()
    _renamed(customer, "Wrong name")
    hold_place(
        record=customer,
        ground=LegalHold.Ground.ACCURACY_CONTESTED,
        requested_by="subject",
        reason="contested",
        actor=officer,
    )
    with pytest.raises(RestoreRefused, match="restricted"):
        version_restore(record=customer, history_id=first.pk, actor=officer, reason="x")


def test_auditor_cannot_restore(db, auditor, customer):
    """Restoring needs the change permission: auditors are refused."""
    from django.core.exceptions import PermissionDenied

    from versions.services import version_restore

    first = customer.history.get()
    _renamed(customer, "Wrong name")
    with pytest.raises(PermissionDenied):
        version_restore(record=customer, history_id=first.pk, actor=auditor, reason="x")


def test_admin_restore_previews_then_restores(officer_client, customer, auditor):
    """Version page -> preview with the diff -> confirm with a reason -> restored."""
    from django.test import Client

    auditor_client = Client()
    auditor_client.force_login(auditor)
    first = customer.history.get()
    _renamed(customer, "Wrong name")
    version_page = officer_client.get(
        f"/admin/shop/customer/{customer.pk}/history/{first.pk}/"
    ).content.decode()
    url = f"/admin/shop/customer/{customer.pk}/history/{first.pk}/restore/"
    assert url in version_page
    preview = officer_client.get(url)
    assert "Wrong name" in preview.content.decode()
    assert auditor_client.get(url).status_code == 403
    assert auditor_client.post(url, {"reason": "x"}).status_code == 403
    latest = customer.history.first().pk

    missing = officer_client.post(url, {"reason": "", "expected_latest": latest})
    assert "Give a reason" in missing.content.decode()
    done = officer_client.post(url, {"reason": "Undo", "expected_latest": latest})

    assert done.status_code == 302
    customer.refresh_from_db()
    assert customer.full_name == "Ada Lovelace"


def test_restore_version_command(db, officer, customer):
    """--dry-run prints the preview only; --yes restores; bad input is a CommandError."""
    first = customer.history.get()
    _renamed(customer, "Wrong name")
    out = StringIO()
    args = ["restore_version", "shop.Customer", str(customer.pk), str(first.pk)]

    call_command(*args, "--dry-run", stdout=out)
    assert "name: 'Wrong name' -> 'Ada Lovelace'" in out.getvalue()
    customer.refresh_from_db()
    assert customer.full_name == "Wrong name"
    with pytest.raises(CommandError, match="--reason"):
        call_command(*args, "--yes", stdout=StringIO())

    call_command(*args, "--yes", "--reason", "Undo", "--actor", "officer", stdout=out)
    customer.refresh_from_db()
    assert customer.full_name == "Ada Lovelace"
    with pytest.raises(CommandError, match="not #"):
        other = Customer.objects.create(email="b@example.org", full_name="B")
        call_command(*args[:3], str(other.history.get().pk), "--dry-run", stdout=StringIO())


# Recover ----------------------------------------------------------------------------------


def _hard_deleted_customer_with_sessions(officer, customer):
    from datetime import timedelta

    from django.utils import timezone

    from retention.services import rows_hard_delete
    from shop.models import Session

    for _ in range(2):
        Session.objects.create(customer=customer, expires_at=timezone.now() + timedelta(1))
    rows_hard_delete(
        queryset=Customer.all_objects.filter(pk=customer.pk), actor=officer, reason="mistake"
    )


def test_recover_inserts_the_record_and_what_was_deleted_with_it(db, officer, customer):
    """The customer comes back from its delete snapshot with its two sessions; ledgered."""
    from shop.models import Session
    from versions.models import LedgerAction, LedgerEntry
    from versions.selectors import deleted_versions
    from versions.services import record_recover

    pk = customer.pk
    _hard_deleted_customer_with_sessions(officer, customer)
    version = deleted_versions(Customer).get()

    record_recover(model=Customer, history_id=version.pk, actor=officer, reason="Undo")

    recovered = Customer.objects.get(pk=pk)
    assert recovered.email == "ada@example.org"
    assert Session.objects.filter(customer_id=pk).count() == 2
    assert not deleted_versions(Customer).exists()
    entry = LedgerEntry.objects.get(action=LedgerAction.RECOVER)
    assert entry.counts == {"shop.Customer": 1, "shop.Session": 2}
    assert recovered.history.first().history_change_reason == "Undo"


def test_recover_refuses_a_unique_clash_and_changes_nothing(db, officer, customer):
    """Another customer took the email since: the preview says so, recovery is refused."""
    from versions.selectors import RestoreRefused, deleted_versions, recover_preview
    from versions.services import record_recover

    _hard_deleted_customer_with_sessions(officer, customer)
    Customer.objects.create(email="ada@example.org", full_name="New Ada")
    version = deleted_versions(Customer).get()

    assert recover_preview(Customer, version.pk).clashes
    with pytest.raises(RestoreRefused, match="already exists"):
        record_recover(model=Customer, history_id=version.pk, actor=officer, reason="Undo")
    assert Customer.objects.count() == 1


def test_recover_refuses_a_version_that_is_not_a_deletion(db, officer, customer):
    """Only a delete snapshot can be recovered."""
    from versions.selectors import RestoreRefused
    from versions.services import record_recover

    with pytest.raises(RestoreRefused, match="not the deletion"):
        record_recover(
            model=Customer, history_id=customer.history.get().pk, actor=officer, reason="x"
        )


def test_admin_lists_deleted_records_and_recovers_one(officer_client, officer, customer):
    """Changelist -> Deleted records -> Recover -> preview -> confirm -> the record is back."""
    from shop.models import Session

    pk = customer.pk
    _hard_deleted_customer_with_sessions(officer, customer)
    changelist = officer_client.get("/admin/shop/customer/").content.decode()
    assert "/admin/shop/customer/deleted/" in changelist
    listing = officer_client.get("/admin/shop/customer/deleted/").content.decode()
    assert "Ada Lovelace" in listing and "recover-link" in listing

    from versions.selectors import deleted_versions

    url = f"/admin/shop/customer/deleted/{deleted_versions(Customer).get().pk}/recover/"
    preview = officer_client.get(url).content.decode()
    assert preview.count("Session of") == 2
    assert officer_client.post(url, {"reason": ""}).status_code == 200
    assert officer_client.post(url, {"reason": "Undo"}).status_code == 302
    assert Customer.objects.filter(pk=pk).exists()
    assert Session.objects.filter(customer_id=pk).count() == 2


def test_auditor_sees_deleted_records_but_cannot_recover(auditor_client, officer, customer):
    """Auditors read the list; the recover page refuses them, GET and POST."""
    from versions.selectors import deleted_versions

    _hard_deleted_customer_with_sessions(officer, customer)
    listing = auditor_client.get("/admin/shop/customer/deleted/").content.decode()
    assert "Ada Lovelace" in listing and "recover-link" not in listing
    url = f"/admin/shop/customer/deleted/{deleted_versions(Customer).get().pk}/recover/"
    assert auditor_client.get(url).status_code == 403
    assert auditor_client.post(url, {"reason": "x"}).status_code == 403
    assert not Customer.objects.exists()


def test_personal_fields_of_an_erased_subject_are_never_restored(db, officer, customer):
    """After an erasure the preview lists the personal fields as erased and leaves them."""
    from compliance.services import subject_erase
    from versions.selectors import restore_preview

    first = customer.history.get()
    subject_erase(subject=customer, actor=None, reason="Erasure request")
    customer.refresh_from_db()
    customer.full_name = "Typed again"
    customer.save()

    preview = restore_preview(customer, first.pk)

    assert {"email", "full_name", "phone"} <= set(preview.erased)
    assert not {c.field for c in preview.changes} & set(preview.erased)


def test_deleted_records_page_points_to_the_soft_deleted_ones(officer_client, customer):
    """Soft-deleted customers are counted, with a link to restore them from the list."""
    Customer.objects.filter(pk=customer.pk).delete()
    page = officer_client.get("/admin/shop/customer/deleted/").content.decode()
    assert "1 customers are soft-deleted" in page
    assert "/admin/shop/customer/?state=deleted" in page


@pytest.mark.django_db(transaction=True)
def test_recover_racing_an_erasure_of_the_gone_subject_waits_for_it(postgres, officer, customer):
    """Two connections: an erasure of a customer whose row is gone holds her history rows
    while a recovery of her deleted record starts. The recovery waits for the erasure, then
    inserts the scrubbed snapshot: her data never comes back."""
    import threading

    from django.db import connection, transaction

    from compliance.selectors import subject_get
    from compliance.services import subject_erase
    from versions.selectors import deleted_versions
    from versions.services import record_recover

    pk = customer.pk
    _hard_deleted_customer_with_sessions(officer, customer)
    version = deleted_versions(Customer).get()
    erased, release, recovered = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def erase():
        try:
            with transaction.atomic():
                subject_erase(subject=subject_get(pk), actor=officer, reason="Request 1")
                erased.set()
                release.wait(10)  # committed only once the recovery has had its chance
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            erased.set()
            connection.close()

    def recover():
        erased.wait(10)
        try:
            record_recover(model=Customer, history_id=version.pk, actor=officer, reason="Undo")
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            recovered.set()
            connection.close()

    threads = [threading.Thread(target=erase), threading.Thread(target=recover)]
    for thread in threads:
        thread.start()
    try:
        erased.wait(10)
        finished_first = recovered.wait(2)  # the recovery must wait for the erasure's lock
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    assert errors == []
    assert not finished_first
    assert Customer.all_objects.get(pk=pk).email != "ada@example.org"
    assert not Customer.history.filter(email="ada@example.org").exists()
    assert not Customer.history.filter(full_name="Ada Lovelace").exists()
