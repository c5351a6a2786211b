"""Erasure of a large subject: `subject_erase` against the per-row ``save()`` path.

Before each variant the same subject is rebuilt (set-based): ROWS rows across tracked tables
(messages it sent, analytics events, notifications, documents, sessions), each with its
creation history row. Both variants then do the same work on the same rows, in one
transaction, with the same end state:

- ``subject_erase``: one UPDATE or DELETE per model writing its history rows in the same
  statement, then one UPDATE per history table scrubbing the personal fields;
- per-row ``save()``: each row loaded, the anonymised values set and ``save()`` called
  (django-simple-history writing its history row through its signal), or ``delete()``
  called for models the registry deletes; then each history row holding personal data
  loaded, anonymised and saved.

The rebuild empties the five tables and their history, whoever's rows they held (the export
benchmark's subject included, which the export and backup benchmarks make again when they
find it short), and checks that the subject holds ROWS rows.

Throughput is rows per second of the whole erasure (ROWS live rows); the ratio is
``subject_erase`` over per-row ``save()``, target >= 50x.
"""

from __future__ import annotations

import time

from django.db import connection, transaction

from compliance.registry import Erasure
from compliance.selectors import erasure_targets, erasure_values, subject_walk
from compliance.services import subject_erase
from retention.models import LegalHold
from shop.models import AnalyticsEvent, Customer, Document, Message, Notification, Session
from versions.context import change_context
from versions.setbased import history_record

from .harness import Config, Result, VariantStats, ratios, require_size

DESCRIPTION = "subject_erase of a 100k-row subject (history scrub included) vs per-row save()"
TARGET = 50.0
# Rows per model (shares of ROWS): what a long-standing, active customer leaves behind.
SHARES = {Message: 0.4, AnalyticsEvent: 0.3, Notification: 0.15, Document: 0.1, Session: 0.05}
FULL = {"rows": 100_000, "rounds": 3}
QUICK = {"rows": 10_000, "rounds": 1}
SUBJECT_EMAIL = "bench-erasure@bench.invalid"
OTHER_EMAIL = "bench-erasure-other@bench.invalid"
FILL = {
    Message: (
        "sender_id, recipient_id, sender_name, body, created_at",
        "%(subject)s, %(other)s, 'Bench Subject', 'Message ' || g || ' from Bench Subject', now()",
    ),
    AnalyticsEvent: (
        "customer_id, name, properties, ip_address, occurred_at",
        "%(subject)s, 'page_view', json_build_object('path', '/p/' || g), '203.0.113.5', now()",
    ),
    Notification: (
        "customer_id, kind, title, body, read_at, created_at",
        "%(subject)s, 'order', 'Order ' || g, 'Dear Bench Subject', NULL, now()",
    ),
    Document: (
        "owner_id, title, content, created_at, updated_at, deleted_at, deleted_by_id, deletion_id",
        "%(subject)s, 'Doc ' || g, 'Content of ' || g, now(), now(), NULL, NULL, NULL",
    ),
    Session: (
        "customer_id, token, ip_address, user_agent, created_at, expires_at",
        "%(subject)s, md5('bench' || g) || md5('session' || g), '203.0.113.5', 'bench/1.0', "
        "now(), now() + interval '1 day'",
    ),
}


def _sizes(config: Config) -> dict:
    return QUICK if config.quick else FULL


def _execute(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _customer(email: str, name: str) -> Customer:
    customer = Customer.all_objects.filter(email=email).first()
    if customer is None:
        customer = Customer.objects.create(email=email, full_name=name, phone="+442079460999")
    return customer


def setup_fixtures(config: Config) -> None:
    """The subject and the other party of its messages; no legal hold anywhere."""
    _customer(SUBJECT_EMAIL, "Bench Subject")
    _customer(OTHER_EMAIL, "Bench Other")
    if LegalHold.objects.filter(released_at__isnull=True).exists():
        print("bench erasure: active legal holds in the bench database slow every plan")


def _rebuild(rows: int) -> Customer:
    """The subject as it was before any erasure: ROWS rows, each with a creation history row."""
    subject, other = _customer(SUBJECT_EMAIL, "Bench Subject"), _customer(OTHER_EMAIL, "x")
    quote = connection.ops.quote_name
    tables = []
    for model in SHARES:
        tables += [model._meta.db_table, model.history.model._meta.db_table]
    _execute("TRUNCATE " + ", ".join(map(quote, tables)))
    Customer.history.filter(id=subject.pk).delete()
    Customer.all_objects.filter(pk=subject.pk).update(
        email=SUBJECT_EMAIL, full_name="Bench Subject", phone="+442079460999"
    )
    history_record(Customer.all_objects.filter(pk=subject.pk), history_type="+")
    keys = {"subject": subject.pk, "other": other.pk}
    for model, share in SHARES.items():
        columns, values = FILL[model]
        _execute(
            f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
            f"SELECT {values % keys} FROM generate_series(1, %s) AS g",
            [int(rows * share)],
        )
        history_record(model._base_manager.all(), history_type="+")
    for table in tables:
        _execute(f"VACUUM ANALYZE {quote(table)}")
    expected = sum(int(rows * share) for share in SHARES.values())
    require_size("erasure", "rows of the subject", _subject_rows(subject), expected)
    return subject


def _subject_rows(subject) -> int:
    """The subject's live rows in the models the fixture fills."""
    return sum(walked.rows.count() for walked in subject_walk(subject) if walked.model in SHARES)


def check_fixtures(config: Config) -> str:
    """The subject as each variant gets it, built once, for ``--setup-only``."""
    subject = _rebuild(_sizes(config)["rows"])
    return f"{_subject_rows(subject):,} rows of the subject, rebuilt before each variant"


def _per_row(subject) -> None:
    """The erasure as a save() loop would do it: same rows, same values, same history."""
    with change_context(reason="bench: per-row erasure"), transaction.atomic():
        walk = subject_walk(subject)
        for walked in walk:
            rows, _ = erasure_targets(walked)
            if walked.entry.erasure == Erasure.ANONYMISE:
                values = erasure_values(walked.entry, walked.model)
                for obj in rows.iterator(chunk_size=2000):
                    for name, value in values.items():
                        setattr(obj, name, value)
                    obj.save()
            elif walked.entry.erasure == Erasure.DELETE:
                for obj in rows.iterator(chunk_size=2000):
                    obj.hard_delete() if hasattr(obj, "hard_delete") else obj.delete()
        for walked in walk:
            _, history = erasure_targets(walked)
            if history is None:
                continue
            values = erasure_values(walked.entry, history.model)
            for obj in history.iterator(chunk_size=2000):
                for name, value in values.items():
                    setattr(obj, name, value)
                obj.save()


def _erase(subject) -> None:
    result = subject_erase(subject=subject, actor=None, reason="bench: erasure")
    assert result.certificate is not None


def _check_erased(subject) -> None:
    """Both variants leave the subject's rows erased and no history row holding its data."""
    for walked in subject_walk(subject):
        rows, history = erasure_targets(walked)
        assert not rows.exists() and (history is None or not history.exists()), walked.entry


def run(config: Config) -> list[Result]:
    sizes = _sizes(config)
    rows = sum(int(sizes["rows"] * share) for share in SHARES.values())
    variants = {"subject_erase": _erase, "per-row save()": _per_row}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for round_index in range(sizes["rounds"]):
        order = list(variants) if round_index % 2 == 0 else list(variants)[::-1]
        for name in order:
            subject = _rebuild(sizes["rows"])
            start = time.perf_counter()
            variants[name](subject)
            seconds[name].append(time.perf_counter() - start)
            _check_erased(subject)
    rates = {name: [rows / s for s in values] for name, values in seconds.items()}
    history_rows = rows * 2  # the creation rows scrubbed, and as many rows the erasure writes
    return [
        Result(
            name="erasure",
            title="subject_erase vs per-row save() on the same subject (history scrubbed)",
            variants=[VariantStats(name, values) for name, values in rates.items()],
            ratio_label="subject_erase / per-row save() (rows/s)",
            ratios=ratios(rates["subject_erase"], rates["per-row save()"]),
            target=TARGET,
            at_least=True,
            unit="rows/s",
            notes=[
                f"{rows:,} rows of one subject across {len(SHARES)} tracked models, each with "
                f"its creation history row; about {history_rows:,} history rows scrubbed or "
                f"written per erasure; {sizes['rounds']} round(s); seconds per variant: "
                + ", ".join(
                    f"{name} {min(values):.2f}-{max(values):.2f}"
                    for name, values in seconds.items()
                ),
            ],
        )
    ]
