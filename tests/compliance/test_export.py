"""Data-subject export: the ZIP, its manifest, the atomic write, downloads, the command,
the admin and a real worker."""

import csv
import hashlib
import io
import json
import threading
import time
import uuid
import zipfile
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.db import connections, transaction
from django.urls import reverse
from django.utils import timezone

from compliance.models import SubjectExport
from compliance.registry import registry
from compliance.services import (
    ComplianceRefused,
    export_download,
    export_path,
    exports_expire,
    subject_export,
    subject_export_queue,
    subject_exports_remove,
)
from compliance.services.exports import NO_FIXED_PERIOD
from retention.models import RetentionPolicy
from shop.models import Customer, Document, Order, PasswordResetToken, Session
from tests.retention import test_workers
from versions.context import change_context
from versions.models import LedgerAction, LedgerEntry
from versions.setbased import history_model_of


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    settings.COMPLIANCE_EXPORT_DIR = tmp_path / "exports"
    return settings.COMPLIANCE_EXPORT_DIR


def _session(customer, **kwargs):
    return Session.objects.create(
        customer=customer, expires_at=timezone.now() + timedelta(days=1), **kwargs
    )


def _order(customer, number="ORD-1", **kwargs):
    return Order.objects.create(
        customer=customer,
        number=number,
        total="12.50",
        shipping_name="Ada Lovelace",
        shipping_address="12 St James's Square",
        shipping_postcode="SW1Y 4JH",
        shipping_city="London",
        shipping_country="GB",
        **kwargs,
    )


@pytest.fixture
def subject_data(customer):
    """A customer with a session, a changed order and a soft-deleted document."""
    session = _session(customer, ip_address="198.51.100.7", user_agent="Firefox/131")
    order = _order(customer)
    order.status = Order.Status.PAID
    order.save()
    Document.objects.create(owner=customer, title="Returns form", content="Please refund")
    Document.objects.filter(owner=customer).delete()  # soft delete
    PasswordResetToken.objects.create(
        customer=customer, expires_at=timezone.now() + timedelta(hours=1)
    )
    other = Customer.objects.create(email="grace@example.org", full_name="Grace Hopper")
    _session(other, ip_address="203.0.113.9")
    _order(other, number="ORD-2")
    return {"session": session, "order": order, "other": other}


def _read(export):
    return zipfile.ZipFile(export_path(export))


def _json(archive, name):
    return json.loads(archive.read(name).decode("utf-8"))


def _csv(archive, name):
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"), newline="")))


def test_export_writes_json_and_csv_per_exported_model_with_history(customer, subject_data):
    """Every exported model gives a JSON and a CSV file of its rows and of its history rows."""
    export = subject_export(subject=customer, actor=None, reason="access request")
    assert export.status == SubjectExport.Status.DONE
    with _read(export) as archive:
        names = set(archive.namelist())
        for entry in registry.entries():
            base = f"{entry.model._meta.app_label}.{entry.model._meta.model_name}"
            expected = {f"{base}.json", f"{base}.csv"}
            if history_model_of(entry.model) is not None:  # consent events keep no history
                expected |= {f"{base}.history.json", f"{base}.history.csv"}
            assert expected <= names, base
        assert "manifest.json" in names
        orders = _json(archive, "shop.order.json")
        assert [o["number"] for o in orders] == ["ORD-1"]  # not the other customer's
        assert orders[0]["status"] == "paid" and orders[0]["total"] == "12.50"
        order_csv = _csv(archive, "shop.order.csv")
        assert list(order_csv[0]) == list(orders[0])  # header: the same columns
        assert order_csv[0]["shipping_city"] == "London"
        history = _json(archive, "shop.order.history.json")
        assert [(h["history_type"], h["status"]) for h in history] == [
            ("+", "pending"),
            ("~", "paid"),
        ]
        assert len(_csv(archive, "shop.order.history.csv")) == 2
        sessions = _json(archive, "shop.session.json")
        assert [s["ip_address"] for s in sessions] == ["198.51.100.7"]


def test_export_includes_soft_deleted_rows(customer, subject_data):
    """A soft-deleted document is part of the export, with its deletion date."""
    export = subject_export(subject=customer, actor=None, reason="test")
    with _read(export) as archive:
        documents = _json(archive, "shop.document.json")
        assert [d["title"] for d in documents] == ["Returns form"]
        assert documents[0]["deleted_at"]
        assert {h["history_type"] for h in _json(archive, "shop.document.history.json")} == {
            "+",
            "~",
        }


def test_export_leaves_out_fields_not_exported(customer, subject_data):
    """Fields declared exported=False (session tokens, reset token hashes) are in no file."""
    token = subject_data["session"].token
    token_hash = PasswordResetToken.objects.get(customer=customer).token_hash
    export = subject_export(subject=customer, actor=None, reason="test")
    with _read(export) as archive:
        assert "token" not in _json(archive, "shop.session.json")[0]
        assert "token_hash" not in _csv(archive, "shop.passwordresettoken.csv")[0]
        for name in archive.namelist():
            content = archive.read(name).decode("utf-8")
            assert token not in content and token_hash not in content, name


def test_history_rows_leave_out_the_staff_member_who_made_the_change(customer, officer):
    """History rows carry date and type, not the staff's user id, IP, user agent or reason."""
    with change_context(user=officer, ip="192.0.2.44", user_agent="StaffBrowser/1", reason="r"):
        customer.full_name = "Ada King"
        customer.save()
    export = subject_export(subject=customer, actor=None, reason="test")
    with _read(export) as archive:
        history = _json(archive, "shop.customer.history.json")
        assert [h["full_name"] for h in history] == ["Ada Lovelace", "Ada King"]
        assert set(history[1]) >= {"history_id", "history_date", "history_type"}
        assert not any(key in history[1] for key in ("history_user_id", "history_ip"))
        content = archive.read("shop.customer.history.csv").decode()
        assert "192.0.2.44" not in content and "StaffBrowser" not in content


def test_manifest_counts_and_sha256_match_every_file(customer, subject_data):
    """The manifest gives each file's rows and SHA-256; both match what the ZIP holds."""
    export = subject_export(subject=customer, actor=None, reason="test")
    with _read(export) as archive:
        manifest = _json(archive, "manifest.json")
        files = manifest["files"]
        assert set(files) == set(archive.namelist()) - {"manifest.json"}
        for name, info in files.items():
            data = archive.read(name)
            assert hashlib.sha256(data).hexdigest() == info["sha256"], name
            assert len(data) == info["bytes"]
            rows = len(json.loads(data)) if name.endswith(".json") else len(_csv(archive, name))
            assert rows == info["rows"], name
        assert files["shop.order.json"]["rows"] == 1
        assert files["shop.order.history.json"]["rows"] == 2
        assert manifest["subject"] == {"model": "shop.Customer", "pk": customer.pk}
    assert export.counts["shop.order"] == 1 and export.counts["shop.order.history"] == 2
    assert export.sha256 == hashlib.sha256(export_path(export).read_bytes()).hexdigest()
    assert export.size == export_path(export).stat().st_size


def test_gdpr_art_15_export_carries_purposes_categories_recipients_retention_and_source(
    customer, subject_data
):
    """Art. 15(1): each kind of record comes with its purposes, categories of data,
    recipients, retention period and source, from the registry and the retention policies."""
    RetentionPolicy.objects.create(
        name="sessions",
        target=ContentType.objects.get_for_model(Session),
        period_days=90,
        enabled=True,
    )
    RetentionPolicy.objects.create(
        name="orders (disabled)",
        target=ContentType.objects.get_for_model(Order),
        period_days=30,
        enabled=False,
    )
    export = subject_export(subject=customer, actor=None, reason="test")
    with _read(export) as archive:
        models = {m["model"]: m for m in _json(archive, "manifest.json")["models"]}
    assert set(models) == {entry.label for entry in registry.entries()}
    session = models["shop.Session"]
    assert session["purposes"] == ["Keeping customers signed in; detecting account takeover."]
    assert session["lawful_basis"] == "Legitimate interests (Art. 6(1)(f))"
    assert session["categories"] == ["Credential or secret", "Online identifier"]
    assert session["recipients"] == list(registry.get(Session).recipients)
    assert session["source"] == registry.get(Session).source
    assert session["retention_period"] == "90 days from created_at"
    assert session["withheld_fields"] == ["token"]
    order = models["shop.Order"]
    assert order["retention_period"] == NO_FIXED_PERIOD  # its only policy is disabled
    assert "Carrier (shipping name and address)" in order["recipients"]
    assert order["legal_ground"] and order["erasure"] == "retain"
    for meta in models.values():
        assert meta["purposes"] and meta["lawful_basis"] and meta["source"]
        assert meta["recipients"] and meta["retention_period"]


def _same(value, text: str) -> bool:
    """Whether a CSV cell says what the JSON value says, whatever the value's type."""
    if value is None:
        return text == ""
    if isinstance(value, bool):
        return text.lower() in (("true", "t", "1") if value else ("false", "f", "0"))
    if isinstance(value, int | float):
        return float(text) == float(value)
    if isinstance(value, dict | list):
        return json.loads(text) == value
    return text == value


def test_gdpr_art_20_export_is_structured_and_machine_readable(customer, subject_data):
    """Art. 20: UTF-8 JSON arrays of objects and CSV with a header, the same rows in both."""
    customer.full_name = "Ada Lovelace – Countess"  # non-ASCII survives as UTF-8
    customer.save()
    export = subject_export(subject=customer, actor=None, reason="test")
    with _read(export) as archive:
        manifest = _json(archive, "manifest.json")
        assert manifest["format"] == "subject-export/1"
        for name in archive.namelist():
            if name == "manifest.json" or not name.endswith(".json"):
                continue
            rows = _json(archive, name)
            assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
            table = _csv(archive, name[: -len(".json")] + ".csv")
            assert len(table) == len(rows)
            for obj, line in zip(rows, table, strict=True):
                assert list(obj) == list(line)
                for key, value in obj.items():
                    assert _same(value, line[key]), (name, key, value, line[key])
        assert _json(archive, "shop.customer.json")[0]["full_name"] == "Ada Lovelace – Countess"


def test_export_keeps_backslashes_quotes_and_line_breaks_exactly(customer):
    """Text with backslashes, quotes, tabs, line breaks and non-ASCII comes back unchanged
    from both files."""
    awkward = 'C:\\new\\table "quoted" \\\\ \\n\nsecond line\ttab, comma; Łódź ✓'
    Document.objects.create(owner=customer, title="awkward", content=awkward)
    export = subject_export(subject=customer, actor=None, reason="test")
    with _read(export) as archive:
        assert _json(archive, "shop.document.json")[0]["content"] == awkward
        assert _csv(archive, "shop.document.csv")[0]["content"] == awkward


def test_export_streams_in_chunks_and_keeps_every_row(customer):
    """Rows cross many chunk boundaries and still come out whole and in order."""
    for i in range(23):
        _session(customer, ip_address=f"198.51.100.{i}")
    export = subject_export(subject=customer, actor=None, reason="test", chunk_size=4)
    with _read(export) as archive:
        sessions = _json(archive, "shop.session.json")
        assert [s["ip_address"] for s in sessions] == [f"198.51.100.{i}" for i in range(23)]
        assert len(_csv(archive, "shop.session.history.csv")) == 23


def test_export_is_a_ledger_entry_without_personal_data(customer, subject_data, officer):
    """The export writes one EXPORT ledger entry: ids, counts and the checksum, no email."""
    export = subject_export(subject=customer, actor=officer, reason="request 17")
    entry = LedgerEntry.objects.get(action=LedgerAction.EXPORT)
    assert entry.actor == officer and entry.reason == "request 17"
    assert entry.target == f"shop.Customer:{customer.pk}"
    assert entry.details["export"] == export.pk and entry.details["sha256"] == export.sha256
    assert entry.counts["shop.order"] == 1
    assert customer.email not in json.dumps([entry.counts, entry.details, entry.target])
    assert export.expires_at - export.finished_at == timedelta(days=7)


def test_failed_export_leaves_no_partial_file_and_no_ledger_entry(
    customer, subject_data, export_dir
):
    """A failure in the middle of the write leaves no file, the export marked failed."""
    written = []

    def fail_after_first_model(label, rows):
        written.append(label)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        subject_export(subject=customer, actor=None, reason="test", progress=fail_after_first_model)
    assert written == [registry.entries()[0].label]
    export = SubjectExport.objects.get()
    assert export.status == SubjectExport.Status.FAILED and "disk full" in export.error
    assert not export.filename
    directory = export_dir
    assert list(directory.iterdir()) == []
    assert not LedgerEntry.objects.filter(action=LedgerAction.EXPORT).exists()


def test_command_output_replaces_nothing_on_failure(customer, subject_data, tmp_path):
    """An existing file at --output stays as it was when the export fails."""
    target = tmp_path / "out.zip"
    target.write_bytes(b"previous")

    def fail(label, rows):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        subject_export(subject=customer, actor=None, reason="test", output=target, progress=fail)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir() if p.name != "exports"] == ["out.zip"]


def test_expiry_days_are_configurable(customer, settings):
    """COMPLIANCE_EXPORT_EXPIRY_DAYS sets how long an export stays downloadable."""
    settings.COMPLIANCE_EXPORT_EXPIRY_DAYS = 2
    export = subject_export(subject=customer, actor=None, reason="test")
    assert export.expires_at - export.finished_at == timedelta(days=2)


# Permissions: officers run and download; auditors see the records only ---------------------


def test_auditor_may_not_run_an_export(customer, auditor):
    """The service refuses an auditor and writes nothing."""
    with pytest.raises(PermissionDenied):
        subject_export(subject=customer, actor=auditor, reason="")
    with pytest.raises(PermissionDenied):
        subject_export_queue(subject=customer, actor=auditor, reason="")
    assert not SubjectExport.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_auditor_may_not_download_an_export(customer, auditor):
    """The download service refuses an auditor, without a ledger entry."""
    export = subject_export(subject=customer, actor=None, reason="test")
    with pytest.raises(PermissionDenied):
        export_download(export=export, actor=auditor)
    assert not LedgerEntry.objects.filter(action=LedgerAction.EXPORT_DOWNLOAD).exists()


def test_admin_run_page_refuses_the_auditor(auditor_client, customer):
    """The auditor gets 403 on the run page, GET and POST, and no export is queued."""
    url = reverse("admin:compliance_subject_export", args=[customer.pk])
    assert auditor_client.get(url).status_code == 403
    assert auditor_client.post(url, {"reason": "x"}).status_code == 403
    assert not SubjectExport.objects.exists()


def test_officer_runs_an_export_from_the_admin(
    officer_client, officer, customer, subject_data, django_capture_on_commit_callbacks
):
    """The run page confirms, and its POST queues the task after commit; the task writes it."""
    url = reverse("admin:compliance_subject_export", args=[customer.pk])
    page = officer_client.get(url)
    assert page.status_code == 200 and b"Run export" in page.content
    with django_capture_on_commit_callbacks() as callbacks:
        response = officer_client.post(url, {"reason": "request 42"})
    assert response.status_code == 302
    assert SubjectExport.objects.get().status == SubjectExport.Status.PENDING  # until commit
    for callback in callbacks:
        callback()
    export = SubjectExport.objects.get()
    assert export.status == SubjectExport.Status.DONE  # eager task in tests
    assert export.requested_by == officer and export.reason == "request 42"
    assert LedgerEntry.objects.get(action=LedgerAction.EXPORT).actor == officer


def test_admin_run_page_of_unknown_subject_is_404(officer_client):
    """A subject id that does not exist gives 404."""
    url = reverse("admin:compliance_subject_export", args=[987654])
    assert officer_client.get(url).status_code == 404


def test_auditor_sees_export_records_but_no_run_or_download(auditor_client, customer):
    """The auditor lists and opens export records; no download link, no add or change."""
    export = subject_export(subject=customer, actor=None, reason="test")
    changelist = auditor_client.get(reverse("admin:compliance_subjectexport_changelist"))
    assert changelist.status_code == 200
    assert str(export) in changelist.content.decode()
    assert b"Download ZIP" not in changelist.content
    search = auditor_client.get(
        reverse("admin:compliance_subjectexport_changelist"), {"q": str(customer.pk)}, follow=True
    )
    assert search.status_code == 200 and str(export) in search.content.decode()
    download = reverse("admin:compliance_subjectexport_download", args=[export.download_key])
    assert auditor_client.get(download).status_code == 403
    assert auditor_client.post(download).status_code == 403
    change = reverse("admin:compliance_subjectexport_change", args=[export.pk])
    assert auditor_client.get(change).status_code == 200
    assert auditor_client.post(change, {"reason": "edited"}).status_code == 403
    add = reverse("admin:compliance_subjectexport_add")
    assert auditor_client.get(add).status_code == 403
    delete = reverse("admin:compliance_subjectexport_delete", args=[export.pk])
    assert auditor_client.post(delete, {"post": "yes"}).status_code == 403
    assert SubjectExport.objects.get().reason == "test"
    assert not LedgerEntry.objects.filter(action=LedgerAction.EXPORT_DOWNLOAD).exists()


def test_officer_downloads_the_zip_and_each_download_is_a_ledger_entry(
    officer_client, officer, customer, subject_data
):
    """The list links the download page (by the export's key); its POST streams the stored
    ZIP and appends a ledger entry."""
    export = subject_export(subject=customer, actor=officer, reason="test")
    url = reverse("admin:compliance_subjectexport_download", args=[export.download_key])
    changelist = officer_client.get(reverse("admin:compliance_subjectexport_changelist"))
    assert f'href="{url}"'.encode() in changelist.content
    for _ in range(2):
        response = officer_client.post(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/zip"
        assert "attachment" in response["Content-Disposition"]
        data = b"".join(response.streaming_content)
        assert hashlib.sha256(data).hexdigest() == export.sha256
    entries = LedgerEntry.objects.filter(action=LedgerAction.EXPORT_DOWNLOAD)
    assert entries.count() == 2
    assert {e.actor for e in entries} == {officer}
    assert entries.first().details["export"] == export.pk


def test_expired_link_is_refused_and_its_file_deleted(officer_client, officer, customer):
    """Past its expiry the download is refused with a message, and the file is gone."""
    export = subject_export(subject=customer, actor=officer, reason="test")
    path = export_path(export)
    SubjectExport.objects.filter(pk=export.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    url = reverse("admin:compliance_subjectexport_download", args=[export.download_key])
    response = officer_client.post(url, follow=True)
    assert b"expired" in response.content and b"run a new export" in response.content
    assert not path.exists()
    assert SubjectExport.objects.get().status == SubjectExport.Status.EXPIRED
    assert not LedgerEntry.objects.filter(action=LedgerAction.EXPORT_DOWNLOAD).exists()
    with pytest.raises(ComplianceRefused, match="expired"):
        export_download(export=SubjectExport.objects.get(), actor=None)


def test_daily_cleanup_deletes_expired_files_only(customer):
    """exports_expire removes the files of expired exports and leaves current ones."""
    old = subject_export(subject=customer, actor=None, reason="test")
    current = subject_export(subject=customer, actor=None, reason="test")
    SubjectExport.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=1))
    from compliance.tasks import exports_expire_scheduled

    assert exports_expire_scheduled() == 1
    assert not export_path(old).exists() and export_path(current).exists()
    assert exports_expire() == 0


def test_erasure_hook_removes_the_subjects_stored_exports_on_commit(
    customer, django_capture_on_commit_callbacks
):
    """subject_exports_remove deletes the subject's ZIPs once the transaction commits."""
    export = subject_export(subject=customer, actor=None, reason="test")
    other = subject_export(subject=Customer.objects.create(email="b@example.org"), actor=None,
                           reason="test")  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        assert subject_exports_remove(subject=customer) == 1
        assert export_path(export).exists()  # not before the commit
    assert not export_path(export).exists() and export_path(other).exists()
    assert SubjectExport.objects.get(pk=export.pk).status == SubjectExport.Status.EXPIRED


# The command ------------------------------------------------------------------------------


def test_command_exports_by_primary_key(customer, subject_data, tmp_path):
    """export_subject <pk> --output PATH writes the ZIP and says so."""
    target = tmp_path / "ada.zip"
    out = StringIO()
    call_command(
        "export_subject", str(customer.pk), "--output", str(target), "--reason", "audit",
        stdout=out,
    )  # fmt: skip
    assert out.getvalue().startswith(f"Wrote {target}:")
    with zipfile.ZipFile(target) as archive:
        assert _json(archive, "shop.order.json")[0]["number"] == "ORD-1"
    export = SubjectExport.objects.get()
    assert export.filename == "" and export.status == SubjectExport.Status.DONE
    entry = LedgerEntry.objects.get(action=LedgerAction.EXPORT)
    assert entry.channel == "command:export_subject"


def test_command_request_names_the_request_the_export_answers(customer, officer, tmp_path):
    """--request N (or #N) records the request on the export; an unknown id is refused
    before anything is written."""
    from compliance.services import request_create, request_verify

    answered = request_create(subject=customer, kind="access", jurisdiction="gdpr", actor=officer)
    answered = request_verify(request=answered, actor=officer, method="email")
    with pytest.raises(CommandError, match="No data-subject request #999"):
        call_command(
            "export_subject", str(customer.pk), "--output", str(tmp_path / "x.zip"),
            "--request", "999", stdout=StringIO(),
        )  # fmt: skip
    assert not SubjectExport.objects.exists() and not (tmp_path / "x.zip").exists()
    target = tmp_path / "ada.zip"
    call_command(
        "export_subject", str(customer.pk), "--output", str(target),
        "--request", f"#{answered.pk}", stdout=StringIO(),
    )  # fmt: skip
    assert SubjectExport.objects.get().request == answered


def test_command_exports_by_email_with_a_reason(customer, tmp_path):
    """The subject may be given by email (any case); --reason goes to the ledger."""
    target = tmp_path / "ada.zip"
    call_command(
        "export_subject", "ADA@example.org", "--output", str(target), "--reason", "req 9",
        stdout=StringIO(),
    )  # fmt: skip
    assert target.exists()
    assert LedgerEntry.objects.get(action=LedgerAction.EXPORT).reason == "req 9"


def test_command_refuses_an_unknown_subject_and_writes_nothing(db, tmp_path):
    """An unknown id or email is a CommandError with a clear message; no file, no record."""
    target = tmp_path / "x.zip"
    with pytest.raises(CommandError, match="No data subject has the id or email"):
        call_command("export_subject", "nobody@example.org", "--output", str(target))
    assert not target.exists() and not SubjectExport.objects.exists()


def test_command_refuses_an_ambiguous_email(customer, tmp_path):
    """An email two subjects share (one deleted) is refused: give the primary key."""
    Customer.objects.filter(pk=customer.pk).delete()
    Customer.objects.create(email="ada@example.org", full_name="Ada again")
    target = tmp_path / "x.zip"
    with pytest.raises(CommandError, match="give the primary key"):
        call_command("export_subject", "ada@example.org", "--output", str(target))
    assert not target.exists() and not SubjectExport.objects.exists()


def test_command_refuses_a_missing_directory(customer, tmp_path):
    """An --output in a directory that does not exist is refused before anything runs."""
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export_subject", str(customer.pk), "--output", str(tmp_path / "a" / "b"))
    assert not SubjectExport.objects.exists()


def test_command_refuses_to_replace_an_existing_file_unless_told(customer, tmp_path):
    """An existing file at --output is kept, and nothing exported, unless --overwrite."""
    target = tmp_path / "ada.zip"
    target.write_bytes(b"someone else's export")
    with pytest.raises(CommandError, match="exists already"):
        call_command("export_subject", str(customer.pk), "--output", str(target))
    assert target.read_bytes() == b"someone else's export"
    assert not SubjectExport.objects.exists()
    call_command(
        "export_subject", str(customer.pk), "--output", str(target), "--overwrite",
        "--reason", "audit", stdout=StringIO(),
    )  # fmt: skip
    assert zipfile.is_zipfile(target)


def test_command_dry_run_counts_and_writes_nothing(customer, subject_data, tmp_path):
    """--dry-run lists rows per model and writes no file, record or ledger entry."""
    target = tmp_path / "x.zip"
    out = StringIO()
    call_command("export_subject", str(customer.pk), "--output", str(target), "--dry-run",
                 stdout=out)  # fmt: skip
    assert "shop.Order: 1 row(s), 2 history row(s)" in out.getvalue()
    assert "[dry run: nothing written]" in out.getvalue()
    assert not target.exists() and not SubjectExport.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_command_refuses_an_actor_without_the_permission(customer, auditor, tmp_path):
    """--actor names who acts; an auditor is refused with a CommandError, nothing written."""
    target = tmp_path / "x.zip"
    with pytest.raises(CommandError, match="may not run data-subject exports"):
        call_command("export_subject", str(customer.pk), "--output", str(target),
                     "--actor", auditor.username)  # fmt: skip
    assert not target.exists()


# A real worker -------------------------------------------------------------------------------

redis_url = test_workers.redis_url  # the fixture: Redis at COMPLIANCE_TEST_REDIS_URL


@pytest.fixture
def export_worker(redis_url, postgres, transactional_db, export_dir):
    """One `celery worker` process on the test database and Redis, writing to `export_dir`."""
    queue = f"test-export-{uuid.uuid4().hex[:8]}"
    with test_workers.celery_workers(redis_url, queue, 1, COMPLIANCE_EXPORT_DIR=str(export_dir)):
        yield queue


@pytest.mark.worker
def test_worker_process_writes_a_queued_export(export_worker, customer):
    """A real worker process runs export_run for a pending export and writes the ZIP."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from compliance.roles import OFFICER
    from compliance.tasks import export_run

    officer = get_user_model().objects.create_user("worker-officer", is_staff=True)
    officer.groups.add(Group.objects.get(name=OFFICER))
    _order(customer)
    pending = SubjectExport.objects.create(subject=customer, requested_by=officer, reason="w")
    export_run.apply_async((pending.pk,), queue=export_worker)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        export = SubjectExport.objects.get()
        if export.status in (SubjectExport.Status.DONE, SubjectExport.Status.FAILED):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the export did not finish within 60 s")
    assert export.status == SubjectExport.Status.DONE, export.error
    with _read(export) as archive:
        assert _json(archive, "shop.order.json")[0]["number"] == "ORD-1"
    entry = LedgerEntry.objects.get(action=LedgerAction.EXPORT)
    assert entry.actor == officer and entry.channel == "task:compliance.tasks.export_run"
    assert entry.task_id


def test_stored_export_is_readable_by_the_application_only(customer, subject_data):
    """The ZIP holds the subject's data: mode 0600, not world-readable."""
    export = subject_export(subject=customer, actor=None, reason="test")
    assert export_path(export).stat().st_mode & 0o777 == 0o600


def test_run_page_with_a_malformed_subject_id_is_a_404(officer_client, db):
    """A subject id that is not a key is a 404, not a server error."""
    url = reverse("admin:compliance_subject_export", args=["abc"])
    assert officer_client.get(url).status_code == 404


def test_a_second_queue_while_one_waits_queues_nothing(
    postgres, transactional_db, customer, monkeypatch
):
    """Two officers queue an export of one subject at the same moment on two connections
    (PostgreSQL): the first has inserted and not yet committed, so the second's lock finds
    no row; still one export is queued, one task sent, and both get that export."""
    from compliance.services import subject_export_queue
    from compliance.tasks import export_run

    sent = []
    monkeypatch.setattr(export_run, "delay", lambda pk: sent.append(pk))
    first_officer, second_officer = _second_officer("queue-a"), _second_officer("queue-b")
    inserted, results, errors = threading.Event(), {}, []

    def first():
        try:
            with transaction.atomic():
                results["first"] = subject_export_queue(
                    subject=customer, actor=first_officer, reason="one"
                )
                inserted.set()
                time.sleep(1)  # the second queue runs while this one is uncommitted
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            inserted.set()
            connections.close_all()

    def second():
        try:
            inserted.wait(10)
            results["second"] = subject_export_queue(
                subject=customer, actor=second_officer, reason="two"
            )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert SubjectExport.objects.count() == 1
    assert results["first"].pk == results["second"].pk == SubjectExport.objects.get().pk
    assert sent == [results["first"].pk]


def test_export_runs_with_debug_on_on_postgresql(postgres, customer, subject_data, settings):
    """With DEBUG on, Django wraps cursors to log queries: the COPY path still exports."""
    from django.db import connection

    settings.DEBUG = True
    connection.force_debug_cursor = True  # what DEBUG=true gives each new connection
    try:
        export = subject_export(subject=customer, actor=None, reason="debug")
    finally:
        connection.force_debug_cursor = False
    assert export.status == SubjectExport.Status.DONE
    with _read(export) as archive:
        assert _json(archive, "shop.order.json")[0]["number"] == "ORD-1"
    assert any("COPY" in query["sql"] for query in connection.queries)


@pytest.mark.parametrize("named", ["abc", "99999", "unverified"])
def test_command_refuses_a_bad_request_and_writes_nothing(customer, officer, tmp_path, named):
    """--request naming an unknown, malformed or unverified request: an error, no file."""
    from compliance.services import request_create

    unverified = request_create(subject=customer, kind="access", jurisdiction="gdpr", actor=None)
    value = str(unverified.pk) if named == "unverified" else named
    target = tmp_path / "out.zip"
    for command, args in [
        ("export_subject", [str(customer.pk), "--output", str(target)]),
        ("erase_subject", [str(customer.pk), "--yes"]),
    ]:
        with pytest.raises(CommandError, match="request"):
            call_command(command, *args, "--reason", "r", "--request", value, stdout=StringIO())
    assert not target.exists() and not SubjectExport.objects.exists()
    assert Customer.objects.get(pk=customer.pk).email == customer.email


def _second_officer(username="officer2"):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from compliance.roles import OFFICER

    user = get_user_model().objects.create_user(username, is_staff=True)
    user.groups.add(Group.objects.get(name=OFFICER))
    return user


def test_download_is_bound_to_the_officer_who_ran_it_or_one_it_names(
    client, officer, customer, subject_data
):
    """Another officer gets 403 on the page and on the POST, and no link; an officer the
    export names may download; a sequential id or an unknown key is a 404."""
    export = subject_export(subject=customer, actor=officer, reason="test")
    url = reverse("admin:compliance_subjectexport_download", args=[export.download_key])
    other = _second_officer()
    client.force_login(other)
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    changelist = client.get(reverse("admin:compliance_subjectexport_changelist"))
    assert b"Download ZIP" not in changelist.content
    with pytest.raises(PermissionDenied):
        export_download(export=export, actor=other)
    for key in [str(export.pk), "x" * 43]:
        guessed = reverse("admin:compliance_subjectexport_download", args=[key])
        assert client.post(guessed).status_code == 404
    assert not LedgerEntry.objects.filter(action=LedgerAction.EXPORT_DOWNLOAD).exists()

    named = subject_export(subject=customer, actor=officer, reason="for delivery", recipient=other)
    url = reverse("admin:compliance_subjectexport_download", args=[named.download_key])
    response = client.post(url)
    assert response.status_code == 200
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == named.sha256
    entry = LedgerEntry.objects.get(action=LedgerAction.EXPORT_DOWNLOAD)
    assert entry.actor == other and entry.details["export"] == named.pk
    assert len(export.download_key) >= 40 and export.download_key != named.download_key


def test_a_get_of_the_download_page_changes_nothing(officer_client, officer, customer):
    """A GET (what a third-party page's <img> sends) shows the confirmation and writes no
    ledger entry, no history, no file."""
    export = subject_export(subject=customer, actor=officer, reason="test")
    url = reverse("admin:compliance_subjectexport_download", args=[export.download_key])
    ledgered = LedgerEntry.objects.count()
    response = officer_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert '<form method="post">' in response.content.decode()
    assert LedgerEntry.objects.count() == ledgered


def test_a_named_recipient_must_be_an_officer(customer, officer, auditor):
    """An export names as its recipient only someone who may download exports."""
    with pytest.raises(ComplianceRefused, match="may not download"):
        subject_export(subject=customer, actor=officer, reason="r", recipient=auditor)
    assert not SubjectExport.objects.exists()


def test_run_page_names_the_officer_who_may_download(officer_client, officer, customer):
    """The run page offers the other officers; the one chosen is recorded as recipient,
    an auditor or a malformed id is refused and nothing is queued."""
    from compliance.roles import AUDITOR

    other = _second_officer()
    url = reverse("admin:compliance_subject_export", args=[customer.pk])
    page = officer_client.get(url).content.decode()
    assert f'<option value="{other.pk}">{other.username}</option>' in page
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    auditor = get_user_model().objects.create_user("aud", is_staff=True)
    auditor.groups.add(Group.objects.get(name=AUDITOR))
    for bad in [str(auditor.pk), "abc"]:
        officer_client.post(url, {"reason": "r", "recipient": bad})
    assert not SubjectExport.objects.exists()
    with transaction.atomic():  # the task is not run: the record is what is checked
        officer_client.post(url, {"reason": "r", "recipient": str(other.pk)})
    assert SubjectExport.objects.get().recipient == other


def test_a_failed_export_is_a_failed_task_with_its_traceback_and_an_actionable_record(
    customer, officer, settings, tmp_path, caplog
):
    """The task fails (not "success"), the log keeps the traceback, and the record says
    what failed and what to do, in words; the export is not left running."""
    import logging

    from compliance.tasks import export_run

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.COMPLIANCE_EXPORT_DIR = blocker / "exports"  # cannot be created
    pending = SubjectExport.objects.create(
        subject=customer, subject_key=str(customer.pk), requested_by=officer, reason="r"
    )
    with caplog.at_level(logging.ERROR, logger="compliance.tasks"):
        result = export_run.apply((pending.pk,), throw=False)
    assert result.failed()
    records = [r for r in caplog.records if r.name == "compliance.tasks"]
    assert records and records[0].exc_info is not None
    assert "Traceback" in caplog.text or records[0].exc_text or records[0].exc_info[2]
    export = SubjectExport.objects.get()
    assert export.status == SubjectExport.Status.FAILED
    assert "export directory" in export.error and "COMPLIANCE_EXPORT_DIR" in export.error


def _aged(path, minutes=60):
    """Date `path` `minutes` ago, as a file left by an earlier crash would be."""
    import os

    moment = time.time() - minutes * 60
    os.utime(path, (moment, moment))
    return path


def test_expiry_sweep_removes_files_the_catalogue_does_not_keep(customer, officer, export_dir):
    """A ZIP whose export was erased (the hook's delete lost to a crash), one with no row, a
    stale .part: the daily sweep deletes them; a finished export's file and a file still
    being written stay. doctor reports the orphans until then."""
    from compliance.tasks import exports_expire_scheduled
    from operations.doctor import ACTION, OK, Thresholds, doctor_run

    kept = subject_export(subject=customer, actor=officer, reason="test")
    erased = subject_export(subject=customer, actor=officer, reason="test")
    # The erasure marked it expired and committed; the process died before the file went.
    SubjectExport.objects.filter(pk=erased.pk).update(status=SubjectExport.Status.EXPIRED)
    _aged(export_path(erased))
    stray = export_dir / "subject-export-999-0123456789abcdef.zip"
    stray.write_bytes(b"PK")
    _aged(stray)
    part = export_dir / ".subject-export-7-ab.zip.cd.part"
    part.write_bytes(b"PK")
    _aged(part)
    staging = export_dir / ".subject-export-9-ab.zip.cd.part.staging"  # killed mid-read
    staging.mkdir()
    (staging / "0").write_bytes(b"[]")
    _aged(staging)
    writing = export_dir / ".subject-export-8-ab.zip.ef.part"
    writing.write_bytes(b"PK")  # modified just now: an export still writing it

    def doctor():
        return doctor_run(thresholds=Thresholds.from_settings(), names=["export-orphans"])

    [finding] = doctor()
    assert finding.status == ACTION and "4 file(s)" in finding.summary
    assert sorted(finding.data["files"]) == sorted(
        [export_path(erased).name, stray.name, part.name, staging.name]
    )
    exports_expire_scheduled.apply()
    assert not export_path(erased).exists() and not stray.exists() and not part.exists()
    assert not staging.exists()
    assert export_path(kept).exists() and writing.exists()
    [finding] = doctor()
    assert finding.status == OK


def test_export_reads_in_one_snapshot_and_compresses_outside_it(
    postgres, transactional_db, customer, subject_data, monkeypatch
):
    """No ZIP entry is compressed while the export's transaction is open: the repeatable-read
    snapshot lasts as long as the reads, not the compression (PostgreSQL)."""
    from django.db import connection

    opened = []
    original = zipfile.ZipFile.open

    def watched(self, name, mode="r", *args, **kwargs):
        if mode == "w":
            opened.append(connection.in_atomic_block)
        return original(self, name, mode, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", watched)
    export = subject_export(subject=customer, actor=None, reason="test")
    assert export.status == SubjectExport.Status.DONE
    assert opened and not any(opened)  # every entry written with no transaction open
    with _read(export) as archive:
        assert _json(archive, "shop.order.json")[0]["number"] == "ORD-1"
        manifest = _json(archive, "manifest.json")
        for name, stat in manifest["files"].items():
            assert hashlib.sha256(archive.read(name)).hexdigest() == stat["sha256"]
    assert not list(export_path(export).parent.glob("*.staging"))
