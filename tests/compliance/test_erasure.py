"""Erasure (Art. 17): the plan, the one-transaction erasure, certificates, the erasure log,
the admin pages, the command, and the sweep that finds nothing left behind."""

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from compliance.models import ErasureCertificate, ErasureLogEntry
from compliance.selectors import erasure_log_matches, erasure_plan
from compliance.services import NOTHING_LEFT, ComplianceRefused, subject_erase
from retention.models import LegalHold
from retention.services import hold_place, rows_hard_delete
from shop.models import (
    AnalyticsEvent,
    Customer,
    Document,
    Message,
    Notification,
    NotificationPreference,
    Order,
    PasswordResetToken,
    Session,
)
from versions.context import change_context
from versions.models import LedgerAction, LedgerEntry

EMAIL, OLD_EMAIL = "ada@example.org", "ada.king@example.net"
NAME, OLD_NAME = "Ada Lovelace", "Ada King"
PHONE = "+442079460001"
IP = "203.0.113.77"
OFFICE_IP = "198.51.100.9"  # the officer's, on the history rows of their edits
NEEDLES = {"email": EMAIL, "old email": OLD_EMAIL, "name": NAME, "old name": OLD_NAME}
NEEDLES |= {"phone": PHONE, "ip": IP}
REASON = "Erasure request of 3 March"


def _soon():
    return timezone.now() + timedelta(days=1)


def _subject_with_everything():
    """A customer with rows in every registered model, edited several times, with history
    rows of rows deleted earlier (hard and soft), a soft-deleted document, and messages
    sent and received."""
    with change_context(ip=OFFICE_IP, user_agent="office browser", reason="setup"):
        ada = Customer.objects.create(email=OLD_EMAIL, full_name=OLD_NAME, phone=PHONE)
        ada.full_name = NAME
        ada.save()
        ada.email = EMAIL
        ada.save()
        ada.avatar_url = "https://img.example.org/ada.png"
        ada.save()
        bob = Customer.objects.create(email="bob@example.org", full_name="Bob Other")
        Session.objects.create(customer=ada, ip_address=IP, expires_at=_soon())
        gone = Session.objects.create(customer=ada, ip_address=IP, expires_at=_soon())
        gone.delete()  # simple-history keeps a deletion snapshot with the IP
        Order.objects.create(
            customer=ada,
            number="A-1",
            total="12.50",
            shipping_name=NAME,
            shipping_address="12 St James's Square",
            shipping_postcode="SW1Y 4JH",
            shipping_city="London",
            shipping_country="GB",
        )
        Message.objects.create(sender=ada, recipient=bob, sender_name=NAME, body=f"Call {PHONE}")
        Message.objects.create(sender=bob, recipient=ada, sender_name="Bob", body=f"Hi {NAME}")
        Message.objects.create(sender=bob, recipient=bob, sender_name="Bob", body="note to self")
        Notification.objects.create(customer=ada, kind="order", title=f"Hello {NAME}", body=EMAIL)
        NotificationPreference.objects.create(customer=ada, channel="email", topic="order")
        AnalyticsEvent.objects.create(
            customer=ada, name="login", properties={"e": EMAIL}, ip_address=IP
        )
        Document.objects.create(owner=ada, title="Invoice", content=f"To {NAME}, {EMAIL}")
        hidden = Document.objects.create(owner=ada, title="Return", content=f"From {NAME}")
        Document.objects.filter(pk=hidden.pk).delete()  # soft delete
        earlier = Document.objects.create(owner=ada, title="Old", content=f"{OLD_NAME} {PHONE}")
        rows_hard_delete(queryset=Document.all_objects.filter(pk=earlier.pk), actor=None, reason="")
        PasswordResetToken.objects.create(customer=ada, expires_at=_soon())
    return ada, bob


# --- the sweep ----------------------------------------------------------------------------

TEXT_TYPES = {"CharField", "TextField", "JSONField", "GenericIPAddressField", "SlugField"}


def _text_columns():
    """(table, column) of every text, varchar, json and inet column of every table."""
    introspection = connection.introspection
    with connection.cursor() as cursor:
        for table in introspection.table_names(cursor):
            for column in introspection.get_table_description(cursor, table):
                kind = introspection.get_field_type(column.type_code, column)
                if kind in TEXT_TYPES or str(column.type_code) in {"869", "3802", "114"}:
                    yield table, column.name


def _sweep() -> set[tuple[str, str, str]]:
    """(table, column, needle) wherever a needle is found, in any row of any table."""
    quote = connection.ops.quote_name
    found = set()
    with connection.cursor() as cursor:
        for table, column in _text_columns():
            for label, needle in NEEDLES.items():
                cursor.execute(
                    f"SELECT COUNT(*) FROM {quote(table)} "
                    f"WHERE LOWER(CAST({quote(column)} AS TEXT)) LIKE %s",
                    [f"%{needle.lower()}%"],
                )
                if cursor.fetchone()[0]:
                    found.add((table, column, label))
    return found


def test_gdpr_art_17_erasure_covers_every_copy_including_history(db, officer):
    """After an erasure, no text, JSON or inet column of any table (history tables included)
    holds the subject's email, name, phone or IP, except what a hold or a legal ground keeps."""
    ada, _ = _subject_with_everything()
    LogEntry.objects.create(  # an officer edited the customer in the admin
        user=officer,
        content_type=ContentType.objects.get_for_model(Customer),
        object_id=str(ada.pk),
        object_repr=str(ada),
        action_flag=CHANGE,
        change_message="[]",
    )
    held = Document.objects.get(title="Invoice")
    with change_context(ip=OFFICE_IP):
        hold_place(record=held, reason="Dispute over invoice", ground="art17_3_e", actor=officer)
    assert {label for _, _, label in _sweep()} == set(NEEDLES)  # the sweep sees everything

    result = subject_erase(subject=ada, actor=officer, reason=REASON)

    assert not result.nothing_left
    # What stays, and why:
    # - the order and its history: the registry retains orders (commercial and tax law);
    # - the held invoice document and its history rows: a legal hold (legal claims).
    kept = {
        ("shop_order", "shipping_name", "name"),
        ("shop_historicalorder", "shipping_name", "name"),
        ("shop_document", "content", "name"),
        ("shop_document", "content", "email"),
        ("shop_historicaldocument", "content", "name"),
        ("shop_historicaldocument", "content", "email"),
    }
    assert _sweep() == kept
    counts = result.certificate.counts
    assert counts["shop.Order"]["kept"] == 1 and counts["shop.Document"]["kept"] == 1
    assert counts["shop.Document"]["deleted"] == 1  # the soft-deleted one; one is held
    assert counts["shop.Customer"]["admin_log_scrubbed"] == 1


def test_sweep_covers_the_history_snapshot_a_delete_writes(db, officer):
    """The deletion snapshot of a session holds its IP until the erasure scrubs it."""
    ada, _ = _subject_with_everything()
    history = Session.history.model

    subject_erase(subject=ada, actor=officer, reason=REASON)

    snapshots = history.objects.filter(customer_id=ada.pk, history_type="-")
    assert snapshots.count() == 2  # deleted earlier, deleted by the erasure
    assert set(snapshots.values_list("ip_address", flat=True)) == {None}
    assert not any(label == "ip" for _, _, label in _sweep())


# --- a failure in the middle changes nothing --------------------------------------------


def _dump() -> dict[str, list]:
    """Every row of every table, in a stable order."""
    quote = connection.ops.quote_name
    dump = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {quote(table)}")
            dump[table] = sorted(map(repr, cursor.fetchall()))
    return dump


def _fail_on_update(table: str):
    """A trigger that refuses any UPDATE of `table`: a failure the database raises."""
    if connection.vendor == "postgresql":
        return [
            "CREATE FUNCTION erasure_test_fail() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql",
            f"CREATE TRIGGER erasure_test_fail BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION erasure_test_fail()",
        ], [
            f"DROP TRIGGER erasure_test_fail ON {table}",
            "DROP FUNCTION erasure_test_fail()",
        ]
    return [
        f"CREATE TRIGGER erasure_test_fail BEFORE UPDATE ON {table} "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    ], ["DROP TRIGGER erasure_test_fail"]


def test_failure_in_the_middle_leaves_the_database_unchanged(db, officer):
    """A failure at the last history table (after every delete and anonymisation ran)
    rolls the whole erasure back: every table is as it was."""
    ada, _ = _subject_with_everything()
    create, drop = _fail_on_update(Session.history.model._meta.db_table)
    with connection.cursor() as cursor:
        for sql in create:
            cursor.execute(sql)
    before = _dump()
    try:
        with pytest.raises(DatabaseError, match="injected failure"), transaction.atomic():
            subject_erase(subject=ada, actor=officer, reason=REASON)
        after = _dump()
    finally:
        with connection.cursor() as cursor:
            for sql in drop:
                cursor.execute(sql)
    assert after == before
    assert not ErasureCertificate.objects.exists()


# --- idempotence, holds, restriction ----------------------------------------------------


def test_the_subjects_own_ip_and_browser_leave_history_and_staff_ones_stay(db, officer):
    """A change no staff member made (the subject on a public site) records the subject's IP
    and browser: the erasure clears them. A staff member's stay: who acted, from where."""
    with change_context(ip="192.0.2.44", user_agent="Grace's phone"):  # she signs up
        grace = Customer.objects.create(email="grace@example.org", full_name="Grace")
    with change_context(user=officer, ip=OFFICE_IP, user_agent="office browser"):
        grace.full_name = "Grace H."
        grace.save()
    with change_context(ip="192.0.2.44", user_agent="Grace's phone"):  # she edits herself
        grace.phone = PHONE
        grace.save()
    with change_context(ip="192.0.2.44", user_agent="Grace's phone"):  # a reset request
        token = PasswordResetToken.objects.create(customer=grace, expires_at=_soon())

    result = subject_erase(subject=grace, actor=officer, reason=REASON)

    rows = Customer.history.filter(id=grace.pk).order_by("history_id")
    context = [(r.history_user_id, r.history_ip, r.history_user_agent) for r in rows]
    assert context == [
        (None, None, ""),
        (officer.pk, OFFICE_IP, "office browser"),
        (None, None, ""),
        (officer.pk, None, ""),  # the anonymised state the erasure itself wrote
    ]
    counts = result.certificate.counts
    assert counts["shop.Customer"]["history_scrubbed"] == 3  # each still held her data
    # A token's history keeps no personal field, but the request's IP and browser were hers.
    tokens = PasswordResetToken.history.filter(id=token.pk)
    assert set(tokens.values_list("history_ip", "history_user_agent")) == {(None, "")}
    again = subject_erase(subject=grace, actor=officer, reason=REASON)
    assert again.certificate is None and NOTHING_LEFT in again.message


def test_an_erasure_clears_an_ip_left_on_rows_already_anonymised(db, officer):
    """History rows whose personal fields are anonymised already (an erasure before IPs
    were cleared, or a restore) lose only their IP and browser: nothing is anonymised twice."""
    with change_context(ip="192.0.2.44", user_agent="Grace's phone"):
        grace = Customer.objects.create(email="grace@example.org", full_name="Grace")
    subject_erase(subject=grace, actor=officer, reason=REASON)
    signup = Customer.history.filter(id=grace.pk).earliest("history_id")
    anonymised = {f: getattr(signup, f) for f in ("email", "full_name", "phone")}
    Customer.history.filter(pk=signup.pk).update(history_ip="192.0.2.44", history_user_agent="x")

    result = subject_erase(subject=grace, actor=officer, reason=REASON)

    assert result.certificate.counts["shop.Customer"]["history_scrubbed"] == 1
    signup.refresh_from_db()
    assert (signup.history_ip, signup.history_user_agent) == (None, "")
    assert {f: getattr(signup, f) for f in anonymised} == anonymised


def test_second_erasure_changes_nothing_and_says_so(db, officer):
    """Running it again writes no certificate, no ledger entry, no history row."""
    ada, _ = _subject_with_everything()
    subject_erase(subject=ada, actor=officer, reason=REASON)
    before = _dump()

    again = subject_erase(subject=ada, actor=officer, reason=REASON)

    assert again.nothing_left and again.certificate is None
    assert again.message.startswith(NOTHING_LEFT)
    assert _dump() == before
    assert ErasureCertificate.objects.count() == 1


def test_hashed_fields_are_not_hashed_again(db, officer, settings):
    """The hash anonymiser is not a fixed point: a second erasure must not rehash a digest."""
    from compliance.registry import Personal, registry

    entry = registry.get(Message)
    original = entry.fields
    entry.fields = {**original, "sender_name": Personal("identity", anonymiser="hash")}
    try:
        ada, _ = _subject_with_everything()
        subject_erase(subject=ada, actor=officer, reason=REASON)
        digests = sorted(Message.objects.values_list("sender_name", flat=True))
        again = subject_erase(subject=ada, actor=officer, reason=REASON)
        assert again.nothing_left
        assert sorted(Message.objects.values_list("sender_name", flat=True)) == digests
    finally:
        entry.fields = original


def test_gdpr_art_17_3_legal_ground_retains_rows(db, officer):
    """Rows a legal hold keeps (a ground of Art. 17(3)) are left with their history rows,
    and the plan, result and certificate name the ground."""
    ada, _ = _subject_with_everything()
    document = Document.objects.get(title="Invoice")
    hold_place(record=document, reason="Invoice dispute", ground="art17_3_e", actor=officer)

    plan = erasure_plan(ada)
    step = {s.label: s for s in plan.steps}["shop.Document"]
    ground = LegalHold.Ground.LEGAL_CLAIMS.label
    assert step.kept == {ground: 1} and step.restricted == 0
    assert {s.label: s for s in plan.steps}["shop.Order"].kept == {
        "Commercial and tax law: orders are accounting records kept 10 years.": 1
    }
    result = subject_erase(subject=ada, actor=officer, reason=REASON)

    document.refresh_from_db()
    assert NAME in document.content
    assert Document.history.filter(id=document.pk, content__contains=NAME).exists()
    assert ground in result.certificate.counts["shop.Document"]["grounds"]
    assert "kept by a legal hold" in result.message
    assert Order.objects.get(number="A-1").shipping_name == NAME


def test_gdpr_art_18_restricted_subject_is_skipped_and_says_so(db, officer):
    """A restricted subject's rows are not processed: the plan and the result say
    "restricted", nothing changes, and no certificate is written."""
    ada, _ = _subject_with_everything()
    hold_place(
        record=ada,
        reason="Accuracy contested",
        ground="art18_1_a",
        requested_by="the data subject",
        actor=officer,
    )
    before = _dump()

    plan = erasure_plan(ada)
    result = subject_erase(subject=ada, actor=officer, reason=REASON)

    assert plan.restricted > 0
    for step in plan.steps:  # orders are retained by the registry's ground anyway
        assert step.restricted == (step.total if step.action != "retain" else 0)
    assert plan.changes == 0
    assert result.nothing_left and "restricted (Art. 18) and were skipped" in result.message
    assert not result.message.startswith(NOTHING_LEFT)
    assert _dump() == before


def test_released_hold_lets_a_later_erasure_finish(db, officer):
    """After the hold is released, the next erasure takes what the hold had kept."""
    ada, _ = _subject_with_everything()
    document = Document.objects.get(title="Invoice")
    hold = hold_place(record=document, reason="Invoice dispute", ground="art17_3_e", actor=officer)
    subject_erase(subject=ada, actor=officer, reason=REASON)
    from retention.services import hold_release

    hold_release(hold=hold, reason="Settled", actor=officer)

    result = subject_erase(subject=ada, actor=officer, reason=REASON)

    assert result.certificate.counts["shop.Document"]["deleted"] == 1
    assert ErasureCertificate.objects.count() == 2


# --- plan hash, certificate, ledger ---------------------------------------------------------


def _has_personal_data(text: str) -> bool:
    text = text.lower()
    return any(needle.lower() in text for needle in NEEDLES.values())


def test_plan_hash_is_stable_and_has_no_personal_data(db, officer):
    """The same data gives the same hash; a change to the data gives another."""
    ada, _ = _subject_with_everything()
    first, second = erasure_plan(ada), erasure_plan(ada)
    assert first.hash == second.hash and re.fullmatch(r"[0-9a-f]{64}", first.hash)
    described = json.dumps({s.label: s.describe() for s in first.steps})
    assert not _has_personal_data(described) and re.fullmatch(r"[0-9a-f]{64}", first.subject_ref)
    Notification.objects.create(customer=ada, kind="order", title="More", body="")
    assert erasure_plan(ada).hash != first.hash


def test_erasure_refused_when_the_plan_changed_since_the_preview(db, officer):
    """The hash the officer confirmed must still be the plan's, or nothing happens."""
    ada, _ = _subject_with_everything()
    seen = erasure_plan(ada).hash
    Notification.objects.create(customer=ada, kind="order", title="New", body="")

    with pytest.raises(ComplianceRefused, match="changed since the preview"):
        subject_erase(subject=ada, actor=officer, reason=REASON, plan_hash=seen)
    assert Customer.objects.get(pk=ada.pk).full_name == NAME


def test_certificate_and_ledger_entry_carry_no_personal_data(db, officer):
    """Counts, the plan hash, who and why: no email, name, phone, IP or subject key."""
    ada, _ = _subject_with_everything()
    result = subject_erase(subject=ada, actor=officer, reason=REASON)
    certificate = result.certificate
    entry = LedgerEntry.objects.get(pk=certificate.ledger_entry_id)

    assert entry.action == LedgerAction.ERASURE
    assert entry.details["plan_hash"] == certificate.plan_hash == result.plan.hash
    for record in (certificate, entry):
        text = json.dumps({f.name: str(getattr(record, f.attname)) for f in record._meta.fields})
        assert not _has_personal_data(text)
    assert certificate.counts["shop.Customer"]["anonymised"] == 1
    assert certificate.counts["shop.Session"]["deleted"] == 1
    assert certificate.totals["history_scrubbed"] > 0
    digests = set(ErasureLogEntry.objects.values_list("digest", flat=True))
    assert len(digests) == 3  # the key and two emails
    assert not any(_has_personal_data(d) or d == str(ada.pk) for d in digests)


def test_permission_refused_without_the_erasure_permission(db, auditor):
    """An auditor (or anyone without the permission) cannot erase."""
    ada, _ = _subject_with_everything()
    with pytest.raises(PermissionDenied):
        subject_erase(subject=ada, actor=auditor, reason=REASON)
    assert Customer.objects.get(pk=ada.pk).email == EMAIL


def test_reason_is_required(db, officer, customer):
    """An erasure without a reason is refused with a message saying what to give."""
    with pytest.raises(ComplianceRefused, match="Give the reason"):
        subject_erase(subject=customer, actor=officer, reason="  ")


# --- the erasure log --------------------------------------------------------------------


def test_erasure_log_finds_the_subject_again_after_a_restore(db, officer):
    """Restoring the subject's row from an earlier copy (a backup) makes it match the log
    by key and by email; erasing it again takes the restored data."""
    ada, _ = _subject_with_everything()
    bob = Customer.objects.get(email="bob@example.org")
    backup = {f.attname: getattr(ada, f.attname) for f in Customer._meta.concrete_fields}
    assert not erasure_log_matches().exists()
    subject_erase(subject=ada, actor=officer, reason=REASON)
    assert list(erasure_log_matches()) == [Customer.objects.get(pk=ada.pk)]  # by key

    # The restore of a backup: the row as it was, under its old key …
    Customer.all_objects.filter(pk=ada.pk).update(**backup)
    assert list(erasure_log_matches().values_list("pk", flat=True)) == [ada.pk]
    # … or under a new key (a copy re-imported elsewhere): found by the email.
    Customer.all_objects.filter(pk=ada.pk).update(email="someone@example.org")
    copy = Customer.objects.create(**{**backup, "id": None, "email": EMAIL.upper()})
    assert set(erasure_log_matches().values_list("pk", flat=True)) == {ada.pk, copy.pk}
    assert bob not in erasure_log_matches()
    by_email = ErasureLogEntry.objects.filter(kind="email")
    assert set(erasure_log_matches(by_email).values_list("pk", flat=True)) == {copy.pk}

    result = subject_erase(subject=Customer.objects.get(pk=ada.pk), actor=officer, reason="replay")
    assert result.certificate.counts["shop.Customer"]["anonymised"] == 1


# --- command -------------------------------------------------------------------------------


def _command(*args):
    out = StringIO()
    call_command("erase_subject", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_command_dry_run_prints_the_plan_and_changes_nothing(db):
    """--dry-run shows rows per model, action and kept rows; nothing changes."""
    ada, _ = _subject_with_everything()
    before = _dump()
    from compliance.management.commands.erase_subject import Command

    out = _command(EMAIL, "--dry-run")

    assert Command.DRY_RUN in out and "shop.Order" in out and "retain" in out
    assert erasure_plan(ada).hash in out
    assert _dump() == before


def test_command_yes_erases_with_the_reason(db):
    """--yes runs the erasure under the command's channel; the ledger names it."""
    ada, _ = _subject_with_everything()
    from compliance.management.commands.erase_subject import Command

    out = _command(str(ada.pk), "--yes", "--reason", REASON)

    assert Command.DONE.split("{")[0] in out
    certificate = ErasureCertificate.objects.get()
    assert certificate.reason == REASON and certificate.actor is None
    assert certificate.ledger_entry.channel == "command:erase_subject"
    assert Customer.objects.get(pk=ada.pk).full_name == "[redacted]"
    assert NOTHING_LEFT in _command(str(ada.pk), "--yes", "--reason", REASON)


def test_command_request_names_the_request_the_erasure_answers(db, officer):
    """--request N records the request on the certificate; an unknown id erases nothing."""
    from django.core.management import CommandError

    from compliance.services import request_create

    ada, _ = _subject_with_everything()
    from compliance.services import request_verify

    answered = request_create(subject=ada, kind="erasure", jurisdiction="gdpr", actor=officer)
    answered = request_verify(request=answered, actor=officer, method="email")
    with pytest.raises(CommandError, match="No data-subject request #999"):
        _command(str(ada.pk), "--yes", "--reason", REASON, "--request", "999")
    assert not ErasureCertificate.objects.exists()

    _command(str(ada.pk), "--yes", "--reason", REASON, "--request", str(answered.pk))

    assert ErasureCertificate.objects.get().request == answered


def test_command_asks_for_confirmation_and_stops_without_it(db, monkeypatch):
    """Without --yes the command asks for the subject's key; anything else stops it."""
    ada, _ = _subject_with_everything()
    answers = iter(["no"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    from compliance.management.commands.erase_subject import Command

    with pytest.raises(CommandError, match="Not confirmed"):
        _command(EMAIL, "--reason", REASON)
    assert not ErasureCertificate.objects.exists()

    answers = iter([str(ada.pk)])
    out = _command(EMAIL, "--reason", REASON)
    assert Command.DONE.split("{")[0] in out and ErasureCertificate.objects.count() == 1


def test_command_refuses_unknown_and_ambiguous_subjects(db, customer):
    """An unknown key or email, or an email two subjects share, is a CommandError."""
    with pytest.raises(CommandError, match="No customer"):
        _command("nobody@example.org", "--dry-run")
    Customer.objects.filter(pk=customer.pk).delete()
    Customer.objects.create(email=customer.email, full_name="Ada again")
    with pytest.raises(CommandError, match="give the primary key"):
        _command(customer.email, "--yes", "--reason", REASON)
    assert not ErasureCertificate.objects.exists()


def test_command_refuses_an_auditor(db, auditor, customer):
    """--actor auditor: the service refuses, the command exits with the message."""
    with pytest.raises(CommandError, match="may not erase"):
        _command(str(customer.pk), "--yes", "--reason", REASON, "--actor", "auditor")
    assert Customer.objects.get(pk=customer.pk).full_name == customer.full_name


def test_command_without_a_reason_is_refused(db, customer):
    """--yes without --reason stops with a message, nothing changed."""
    with pytest.raises(CommandError, match="Give the reason"):
        _command(str(customer.pk), "--yes")
    assert not ErasureCertificate.objects.exists()


# --- admin --------------------------------------------------------------------------------


def _url(subject):
    return reverse("admin:compliance_subject_erasure", args=[subject.pk])


def test_admin_preview_then_confirm_erases_and_shows_the_certificate(db, officer_client):
    """The preview lists rows per model, actions, kept rows and why; the confirmation
    (reason required) erases and redirects to the certificate."""
    ada, _ = _subject_with_everything()
    hold_place(
        record=Document.objects.get(title="Invoice"),
        reason="Dispute",
        ground="art17_3_e",
        actor=None,
    )
    page = officer_client.get(_url(ada))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Messages" in html and "Anonymise the personal fields" in html
    assert LegalHold.Ground.LEGAL_CLAIMS.label in html and "accounting records" in html
    plan_hash = erasure_plan(ada).hash
    assert plan_hash in html

    missing = officer_client.post(_url(ada), {"plan_hash": plan_hash, "reason": ""})
    assert missing.status_code == 200 and "Give the reason" in missing.content.decode()
    assert not ErasureCertificate.objects.exists()

    done = officer_client.post(_url(ada), {"plan_hash": plan_hash, "reason": REASON}, follow=True)
    certificate = ErasureCertificate.objects.get()
    assert done.redirect_chain[-1][0] == reverse(
        "admin:compliance_erasurecertificate_change", args=[certificate.pk]
    )
    assert "Erased:" in done.content.decode()
    again = officer_client.get(_url(ada)).content.decode()
    assert NOTHING_LEFT in again


def test_admin_unknown_subject_is_404(db, officer_client):
    """A key that names no subject is a 404, not an error page."""
    assert (
        officer_client.get(reverse("admin:compliance_subject_erasure", args=[999999])).status_code
        == 404
    )


def test_auditor_sees_certificates_and_runs_nothing(db, officer, auditor_client):
    """Auditors read certificates; the erasure page, its POST, and every write to a
    certificate are refused."""
    ada, _ = _subject_with_everything()
    certificate = subject_erase(subject=ada, actor=officer, reason=REASON).certificate
    bob = Customer.objects.get(email="bob@example.org")
    changelist = reverse("admin:compliance_erasurecertificate_changelist")
    change = reverse("admin:compliance_erasurecertificate_change", args=[certificate.pk])
    assert auditor_client.get(changelist).status_code == 200
    detail = auditor_client.get(change)
    html = detail.content.decode()
    assert detail.status_code == 200 and 'name="_save"' not in html and "deletelink" not in html

    assert auditor_client.get(_url(bob)).status_code == 403
    plan_hash = erasure_plan(bob).hash
    assert (
        auditor_client.post(_url(bob), {"plan_hash": plan_hash, "reason": "x"}).status_code == 403
    )
    assert auditor_client.post(change, {"reason": "x"}).status_code == 403
    add = reverse("admin:compliance_erasurecertificate_add")
    assert auditor_client.get(add).status_code == 403
    delete = reverse("admin:compliance_erasurecertificate_delete", args=[certificate.pk])
    assert auditor_client.post(delete, {"post": "yes"}).status_code == 403
    assert Customer.objects.get(pk=bob.pk).full_name == "Bob Other"
    assert ErasureCertificate.objects.count() == 1


def test_officer_cannot_edit_or_delete_certificates(db, officer, officer_client):
    """Certificates are written by erasures only: no add, change or delete for anyone."""
    ada, _ = _subject_with_everything()
    certificate = subject_erase(subject=ada, actor=officer, reason=REASON).certificate
    change = reverse("admin:compliance_erasurecertificate_change", args=[certificate.pk])
    delete = reverse("admin:compliance_erasurecertificate_delete", args=[certificate.pk])
    assert officer_client.post(change, {"reason": "x"}).status_code == 403
    assert officer_client.post(delete, {"post": "yes"}).status_code == 403
    certificate.refresh_from_db()
    assert certificate.reason == REASON


def test_erasure_deletes_the_subjects_stored_exports(
    db, officer, settings, tmp_path, django_capture_on_commit_callbacks
):
    """An export ZIP is a copy of the subject's data: the erasure deletes it on commit and
    the ledger entry counts it."""
    from compliance.models import SubjectExport
    from compliance.services import export_path, subject_export

    settings.COMPLIANCE_EXPORT_DIR = tmp_path
    ada, _ = _subject_with_everything()
    export = subject_export(subject=ada, actor=None, reason="access request")
    assert export_path(export).exists()

    with django_capture_on_commit_callbacks(execute=True):
        subject_erase(subject=ada, actor=officer, reason=REASON)

    assert not export_path(export).exists()
    assert SubjectExport.objects.get(pk=export.pk).status == SubjectExport.Status.EXPIRED
    entry = LedgerEntry.objects.filter(action=LedgerAction.ERASURE).get()
    assert entry.details["exports_removed"] == 1


def test_command_without_yes_and_with_closed_input_stops_clearly(db, monkeypatch):
    """From cron (no terminal, input closed) without --yes: a clear error, nothing erased."""
    import io
    import sys

    ada, _ = _subject_with_everything()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="--yes"):
        _command(str(ada.pk), "--reason", REASON)
    assert not ErasureCertificate.objects.exists()


def test_erasure_names_exports_written_to_files_of_their_own(db, officer, tmp_path):
    """A ZIP export_subject wrote to --output is out of reach: the erasure says to delete it."""
    ada, _ = _subject_with_everything()
    call_command(
        "export_subject",
        str(ada.pk),
        "--output",
        str(tmp_path / "ada.zip"),
        "--reason",
        "audit",
        stdout=StringIO(),
    )
    from compliance.models import SubjectExport

    export = SubjectExport.objects.get()

    result = subject_erase(subject=ada, actor=officer, reason=REASON)

    assert result.exports_elsewhere == [export.pk]
    assert f"Export(s) #{export.pk} were written by export_subject" in result.message


def test_erasing_the_recipient_leaves_the_senders_name(db, officer):
    """A sender's name is theirs alone: erasing the recipient anonymises the body of the
    message they received (it names them) and the name on the message they sent, and
    leaves the other sender's name, in the row and its history rows."""
    ada, bob = _subject_with_everything()
    to_ada = Message.objects.get(sender=bob, recipient=ada)
    from_ada = Message.objects.get(sender=ada, recipient=bob)

    subject_erase(subject=ada, actor=officer, reason=REASON)

    to_ada.refresh_from_db()
    from_ada.refresh_from_db()
    assert (to_ada.sender_name, to_ada.body) == ("Bob", "[redacted]")
    assert (from_ada.sender_name, from_ada.body) == ("[redacted]", "[redacted]")
    history = Message.history.model.objects.filter(id=to_ada.pk)
    assert set(history.values_list("sender_name", flat=True)) == {"Bob"}
    assert set(history.values_list("body", flat=True)) == {"[redacted]"}
    assert erasure_plan(ada).changes == 0  # the name it leaves is not left to erase
