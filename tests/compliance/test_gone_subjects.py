"""Subjects whose row is gone (hard-deleted or purged) while history still holds their data:
found by key or email, shown, erased, and erased again after a restore brings their history
rows back."""

import json
import zipfile
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from compliance.models import ErasureCertificate, ErasureLogEntry, SubjectExport, SubjectRequest
from compliance.selectors import (
    SubjectAmbiguous,
    erasure_log_gone,
    erasure_plan,
    subject_find,
    subject_get,
    subject_gone,
)
from compliance.services import (
    NOTHING_LEFT,
    export_path,
    request_create,
    request_verify,
    subject_erase,
    subject_export_queue,
)
from operations.restore import erasures_replay
from retention.services import hold_place, rows_hard_delete
from shop.models import Customer, Document, Session
from versions.context import change_context

EMAIL, OLD_EMAIL, NAME = "grace@example.org", "grace.b@example.net", "Grace Hopper"
IP = "203.0.113.91"
REASON = "Erasure request of 9 May"


def _gone_customer(actor, before_purge=lambda customer: None):
    """A customer edited twice, with a session and a document, then deleted for good: only
    history rows (the deletion snapshots among them) still hold her data. `before_purge` is
    called with her while she exists."""
    with change_context(reason="setup"):
        grace = Customer.objects.create(email=OLD_EMAIL, full_name="Grace B")
        grace.full_name, grace.email = NAME, EMAIL
        grace.save()
        Session.objects.create(
            customer=grace, ip_address=IP, expires_at=timezone.now() + timedelta(days=1)
        )
        Document.objects.create(owner=grace, title="CV", content=f"{NAME}, {EMAIL}")
    key = grace.pk
    before_purge(grace)
    rows_hard_delete(queryset=Customer.all_objects.filter(pk=key), actor=actor, reason="purge")
    assert not Customer.all_objects.filter(pk=key).exists()
    return key


def _holding(model, key, *values) -> int:
    """History rows of `model` about customer `key` that still hold one of `values`."""
    history = model.history.model.objects
    rows = history.filter(id=key) if model is Customer else history.filter(**_about(model, key))
    return sum(
        1 for row in rows for value in values if value in " ".join(map(str, vars(row).values()))
    )


def _about(model, key):
    return {"owner_id": key} if model is Document else {"customer_id": key}


def test_a_gone_subject_is_found_by_key_and_by_any_email_they_had(db, officer):
    key = _gone_customer(officer)

    for identifier in (str(key), EMAIL, OLD_EMAIL.upper()):
        found = subject_find(identifier)
        assert found is not None and found.pk == key
        assert subject_gone(found)
    assert subject_get(key).email == EMAIL  # as the last history row left it
    assert not subject_gone(Customer.objects.create(email="x@example.org", full_name="X"))
    assert subject_get(999999) is None and subject_find("nobody@example.org") is None


def test_an_email_someone_has_now_finds_them_not_the_gone_subject_who_had_it(db, officer):
    """Signing up again with the email of a purged account: the search finds the new one."""
    _gone_customer(officer)
    again = Customer.objects.create(email=EMAIL.upper(), full_name="Grace, again")

    assert subject_find(EMAIL) == again


def test_an_email_nobody_has_now_finds_whoever_had_it_or_is_ambiguous(db, officer):
    """Failing a current match, history decides: one subject who had the email (live or
    gone) is found; two are refused, with the way out."""
    with change_context(reason="setup"):
        ada = Customer.objects.create(email="ada@example.org", full_name="Ada")
        ada.email = "ada.new@example.org"
        ada.save()
    assert subject_find("ada@example.org") == ada  # her old email

    key = _gone_customer(officer)
    assert subject_find(OLD_EMAIL).pk == key
    with change_context(reason="setup"):
        ada.email = OLD_EMAIL  # she had the gone customer's old email for a while
        ada.save()
        ada.email = "ada.new@example.org"
        ada.save()

    with pytest.raises(SubjectAmbiguous, match="have or had the email .*give the primary key"):
        subject_find(OLD_EMAIL)


def test_erasing_a_gone_subject_scrubs_every_history_row_about_them(db, officer):
    key = _gone_customer(officer)
    assert _holding(Customer, key, EMAIL, OLD_EMAIL, NAME)
    assert _holding(Session, key, IP) and _holding(Document, key, NAME)

    result = subject_erase(subject=subject_find(EMAIL), actor=officer, reason=REASON)

    assert result.certificate is not None
    assert result.certificate.counts["shop.Customer"]["history_scrubbed"] == 3  # +, ~, -
    assert not _holding(Customer, key, EMAIL, OLD_EMAIL, NAME)
    assert not _holding(Session, key, IP) and not _holding(Document, key, NAME)
    again = subject_erase(subject=subject_get(key), actor=officer, reason=REASON)
    assert again.certificate is None and NOTHING_LEFT in again.message


def test_replay_after_a_restore_scrubs_a_gone_subjects_history_again(db, officer, admin_user):
    """The subject's row was gone before the backup; she was erased after it. Restoring the
    backup brings her history rows back as they were: the replay erases them again."""
    key = _gone_customer(officer)
    history = Customer.history.model
    backup = list(history.objects.filter(id=key).values())
    assert erasure_log_gone() == []
    subject_erase(subject=subject_get(key), actor=officer, reason=REASON)
    assert erasure_log_gone() == [key]  # by key: her scrubbed history rows keep it
    by_email = ErasureLogEntry.objects.filter(kind="email")
    assert by_email.exists() and erasure_log_gone(by_email) == []  # never by email
    assert erasures_replay(actor=admin_user, reason="replay").erased == 0  # nothing left

    for row in backup:  # the restore
        history.objects.filter(pk=row["history_id"]).update(**row)
    assert erasure_log_gone() == [key]

    assert erasures_replay(actor=admin_user, reason="replay after restore").erased == 1
    assert not _holding(Customer, key, EMAIL, OLD_EMAIL, NAME)
    assert ErasureCertificate.objects.count() == 2
    # Limited to other subjects (a table recovery's), she is left to them.
    for row in backup:
        history.objects.filter(pk=row["history_id"]).update(**row)
    assert erasures_replay(actor=admin_user, reason="replay", subject_keys=[key + 1]).erased == 0
    assert _holding(Customer, key, EMAIL)


def test_a_gone_subject_is_exported_from_what_history_holds(
    db, officer, settings, tmp_path, django_capture_on_commit_callbacks
):
    """Art. 15 still applies: the queued export (run in process here) holds her history rows,
    and names her by key, her row being gone."""
    settings.COMPLIANCE_EXPORT_DIR = tmp_path
    key = _gone_customer(officer)

    with django_capture_on_commit_callbacks(execute=True):
        export = subject_export_queue(subject=subject_get(key), actor=officer, reason="access")

    export.refresh_from_db()
    assert export.status == SubjectExport.Status.DONE, export.error
    assert export.subject_id is None and export.subject_key == str(key)
    assert str(export) == f"Export #{export.pk} of subject {key}"
    with zipfile.ZipFile(export_path(export)) as archive:
        customers = json.loads(archive.read("shop.customer.json"))
        history = json.loads(archive.read("shop.customer.history.json"))
        sessions = json.loads(archive.read("shop.session.history.json"))
    assert customers == []  # no row
    assert [(h["history_type"], h["email"]) for h in history] == [
        ("+", OLD_EMAIL),
        ("~", EMAIL),
        ("-", EMAIL),
    ]
    assert {s["ip_address"] for s in sessions} == {IP}
    # Her erasure deletes the stored ZIP, as anyone's.
    with django_capture_on_commit_callbacks(execute=True):  # files go once committed
        result = subject_erase(subject=subject_get(key), actor=officer, reason=REASON)
    assert result.certificate.ledger_entry.details["exports_removed"] == 1
    assert not export_path(export).exists()
    export.refresh_from_db()
    assert export.status == SubjectExport.Status.EXPIRED


def test_the_export_command_takes_a_gone_subject_by_email(db, officer, tmp_path):
    key = _gone_customer(officer)
    target = tmp_path / "grace.zip"

    out = StringIO()
    call_command(
        "export_subject", OLD_EMAIL, "--output", str(target), "--reason", "audit", stdout=out
    )

    with zipfile.ZipFile(target) as archive:
        history = json.loads(archive.read("shop.customer.history.json"))
    assert {h["id"] for h in history} == {key} and len(history) == 3
    assert SubjectExport.objects.get().subject_key == str(key)


def test_the_erasure_command_says_the_row_is_gone_and_erases_the_history(db, officer):
    key = _gone_customer(officer)

    out = StringIO()
    call_command("erase_subject", OLD_EMAIL, "--yes", "--reason", REASON, stdout=out)

    assert f"shop.Customer {key}" in out.getvalue()
    assert "Its row is gone (deleted or purged)" in out.getvalue()
    assert not _holding(Customer, key, EMAIL, OLD_EMAIL, NAME)


def test_a_request_about_a_gone_subject_keeps_their_key_and_is_answered(db, officer):
    key = _gone_customer(officer)
    request = request_create(
        subject=subject_get(key), kind="erasure", jurisdiction="gdpr", actor=officer
    )
    assert request.subject_id is None and request.subject_key == str(key)
    request = request_verify(request=request, actor=officer, method="document")

    result = subject_erase(subject=subject_get(key), actor=officer, reason=REASON, request=request)
    assert result.certificate.request == request


def test_admin_overview_and_erasure_of_a_gone_subject(db, officer, officer_client):
    key = _gone_customer(officer)
    search = officer_client.post(reverse("admin:compliance_subject_search"), {"q": EMAIL})
    overview = reverse("admin:compliance_subject_overview", args=[key])
    assert search.status_code == 302 and search["Location"] == overview

    page = officer_client.get(overview).content.decode()
    assert "gone-marker" in page and "is gone (deleted" in page
    erasure = reverse("admin:compliance_subject_erasure", args=[key])
    assert erasure in page
    export = reverse("admin:compliance_subject_export", args=[key])
    assert export in page
    confirm = officer_client.get(export).content.decode()
    assert "The row of this customer is gone" in confirm
    assert reverse("admin:compliance_consent_timeline", args=[key]) not in page
    assert reverse("admin:shop_customer_change", args=[key]) not in page

    preview = officer_client.get(erasure)
    assert preview.status_code == 200 and "Their row is gone" in preview.content.decode()
    plan_hash = erasure_plan(subject_get(key)).hash
    assert plan_hash in preview.content.decode()
    done = officer_client.post(erasure, {"plan_hash": plan_hash, "reason": REASON}, follow=True)
    assert "Erased:" in done.content.decode()
    assert not _holding(Customer, key, EMAIL, NAME)


def test_a_request_whose_subject_row_went_still_leads_to_their_erasure(db, officer, officer_client):
    """A request received while the customer existed; the customer is then purged (the
    request keeps her key): its page still offers the erasure preview of what history holds."""
    received = []
    key = _gone_customer(
        officer,
        lambda grace: received.append(
            request_create(subject=grace, kind="erasure", jurisdiction="gdpr", actor=officer)
        ),
    )
    request = received[0]
    request.refresh_from_db()
    assert request.subject_id is None  # SET_NULL when her row went
    request_verify(request=request, actor=officer, method="document")
    page = officer_client.get(
        reverse("admin:compliance_subjectrequest_change", args=[request.pk])
    ).content.decode()
    assert reverse("admin:compliance_subject_erasure", args=[key]) in page


def test_auditor_finds_a_gone_subjects_changes_in_the_history_browser(db, officer, auditor_client):
    with change_context(reason="setup"):
        other = Customer.objects.create(email="other@example.org", full_name="Other Person")
        Session.objects.create(
            customer=other, ip_address="198.51.100.200", expires_at=timezone.now()
        )
    key = _gone_customer(officer)

    page = auditor_client.post("/admin/versions/changes/", {"subject": EMAIL}, follow=True)
    page = page.content.decode()

    assert "No data subject has this email or id." not in page
    assert page.count("<td>shop.Customer</td>") == 3  # created, changed, deleted
    assert "<td>shop.Session</td>" in page and "<td>shop.Document</td>" in page
    assert f"/admin/shop/customer/{key}/history/" in page
    assert "Other Person" not in page and "198.51.100.200" not in page


def test_the_migration_names_existing_exports_by_their_subjects_key(transactional_db):
    """Exports made before `subject_key` existed get it: from their subject, or, the subject
    row being gone, from the export's ledger entry."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from versions.ledger import ledger_append
    from versions.models import LedgerAction

    before = ("compliance", "0004_export_erasure_request")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    Export = executor.loader.project_state(before, at_end=True).apps.get_model(
        "compliance", "SubjectExport"
    )
    live = Customer.objects.create(email="ada@example.org", full_name="Ada")
    of_live = Export.objects.create(subject_id=live.pk, status="done")
    of_gone = Export.objects.create(subject_id=None, status="done")
    unknown = Export.objects.create(subject_id=None, status="failed")
    ledger_append(
        action=LedgerAction.EXPORT,
        actor=None,
        reason="",
        target="shop.Customer:77",
        details={"export": of_gone.pk},
    )

    MigrationExecutor(connection).migrate([("compliance", "0005_export_subject_key")])
    call_command("migrate", verbosity=0)

    keys = dict(SubjectExport.objects.values_list("pk", "subject_key"))
    assert keys == {of_live.pk: str(live.pk), of_gone.pk: "77", unknown.pk: ""}


def test_a_restricted_gone_subject_keeps_their_history_from_erasure(db, officer, officer_client):
    """Restricting processing (Art. 18) works for a gone subject too: the hold names their
    key, and an erasure then leaves their history rows as they are."""
    key = _gone_customer(officer)
    restrict = reverse("admin:compliance_subject_restrict", args=[key])
    page = officer_client.get(restrict)
    assert page.status_code == 200

    hold_place(
        record=subject_get(key),
        reason="Accuracy contested",
        ground="art18_1_a",
        requested_by="the data subject",
        actor=officer,
    )

    result = subject_erase(subject=subject_get(key), actor=officer, reason=REASON)
    assert result.certificate is None
    assert "7 history row(s) still hold this subject's data, kept by" in result.message  # 3+2+2
    assert _holding(Customer, key, EMAIL, NAME)


def test_officer_records_a_request_about_a_gone_subject_by_email(db, officer, officer_client):
    """The add form takes an email as well as an id, and finds someone whose row is gone;
    an email nobody has or had is a form error, and nothing is recorded."""
    key = _gone_customer(officer)
    received = timezone.localtime() - timedelta(days=1)
    data = {
        "kind": "erasure",
        "jurisdiction": "gdpr",
        "received_0": received.strftime("%Y-%m-%d"),
        "received_1": received.strftime("%H:%M:%S"),
    }
    add = reverse("admin:compliance_subjectrequest_add")

    unknown = officer_client.post(add, {**data, "subject": "nobody@example.org"})
    assert unknown.status_code == 200
    assert "No customer has or had this id or email." in unknown.content.decode()
    assert not SubjectRequest.objects.exists()

    assert officer_client.post(add, {**data, "subject": EMAIL}).status_code == 302
    request = SubjectRequest.objects.get()
    assert request.subject_id is None and request.subject_key == str(key)
    request_verify(request=request, actor=officer, method="document")
    page = officer_client.get(reverse("admin:compliance_subjectrequest_change", args=[request.pk]))
    assert reverse("admin:compliance_subject_erasure", args=[key]) in page.content.decode()
    listed = officer_client.get(reverse("admin:compliance_subjectrequest_changelist"))
    assert f"{key} (row gone)" in listed.content.decode()
