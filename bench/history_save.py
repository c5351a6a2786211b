"""Saving a tracked Customer with context capture, against the raw-SQL floor and no history.

Three variants, measured interleaved in the same rounds:

- tracked:   ``customer.save()`` inside ``change_context(user, ip, user_agent, request_id)``:
             the UPDATE, then simple-history's ``create_historical_record`` (through
             `TrackedHistory`) inserts the history row, its context columns filled from
             `versions.context`;
- floor:     the same two statements (UPDATE of every column, INSERT of the history row
             with the same columns) in raw SQL with their parameters ready: the database's
             own cost, which no Python-side change can go below;
- django alone: the untracked save, then the same history row built as simple-history builds
             it and written by Django's own ``Model.save()``, with nothing of simple-history
             around it: what the ORM itself costs, the lowest any path through
             simple-history's ``create_historical_record`` (which ends in that ``save()``)
             can reach;
- untracked: ``customer.save_without_historical_record()``: the UPDATE alone, through the ORM;
- floor update: the floor's UPDATE alone.

What history costs a save through simple-history (``tracked / untracked``) is compared with
what the same history row costs the database itself (``floor / floor update``): the target
is that the first stays within 1.2x of the second. ``tracked / floor`` is printed too, and
the same ratio for Django alone, with ``tracked / django alone``: simple-history's own share
(its signal, context, empty-version check) above the ORM's. Three scenarios:

- ``history_save`` (target: the ratio of ratios <= 1.2x): each save in its own committed
  transaction, as an admin change runs: the save and its history row share one COMMIT;
- ``history_save_autocommit`` (context): no transaction around a save, so the tracked save
  and the floor commit twice;
- ``history_save_batched`` (context): all saves of a batch in one transaction, rolled back:
  no COMMIT at all, so this shows the statement and Python cost alone.

Statements per operation are counted, not assumed: one operation of each variant runs
under ``CaptureQueriesContext`` (which logs a per-save transaction's BEGIN and COMMIT too).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import replace

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shop.models import Customer
from versions.context import change_context, new_request_id
from versions.history import history_options

from .harness import Config, Result, VariantStats, measure_interleaved, ratios

DESCRIPTION = "Customer.save() tracked with context vs the same statements in raw SQL"
TARGET = 1.2  # history's cost to a save at most 1.2x its cost to the database alone

EMAIL = "bench-{:05d}@bench.invalid"
USERNAME = "bench-history-save"
IP = "203.0.113.17"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) bench/1.0"


def setup_fixtures(config: Config) -> None:
    """A staff user to act as, and `config.batch` customers (created untracked)."""
    User = get_user_model()
    user, _ = User.objects.get_or_create(
        username=USERNAME, defaults={"is_staff": True, "email": "bench@bench.invalid"}
    )
    if user.has_usable_password():
        user.set_unusable_password()
        user.save(update_fields=["password"])
    wanted = {EMAIL.format(i) for i in range(config.batch)}
    existing = set(Customer.objects.filter(email__in=wanted).values_list("email", flat=True))
    missing = sorted(wanted - existing)
    Customer.objects.bulk_create(
        [Customer(email=email, full_name=f"Bench {email[6:11]}") for email in missing]
    )


def check_fixtures(config: Config) -> str:
    """What the fixture holds (after `setup_fixtures`), for ``--setup-only``."""
    return f"{len(_customers(config)):,} customers to save, of {config.batch:,} a batch"


def _customers(config: Config) -> list[Customer]:
    emails = [EMAIL.format(i) for i in range(config.batch)]
    return list(Customer.objects.filter(email__in=emails).order_by("email"))


def _context(user):
    return change_context(user=user, ip=IP, user_agent=USER_AGENT, request_id=new_request_id())


def _verify_capture(customer: Customer, user) -> str:
    """One tracked save (rolled back) must write a history row carrying the context."""
    with transaction.atomic():
        with _context(user) as ctx:
            customer.full_name = "Bench verify"
            customer.save()
        row = customer.history.order_by("-history_id").first()
        transaction.set_rollback(True)
    problems = [
        name
        for name, got, want in [
            ("history_user", row and row.history_user_id, user.pk),
            ("history_ip", row and row.history_ip, IP),
            ("history_user_agent", row and row.history_user_agent, USER_AGENT),
            ("history_request_id", row and row.history_request_id, ctx.request_id),
        ]
        if got != want
    ]
    if problems:
        raise AssertionError(f"tracked save did not capture: {', '.join(problems)}")
    return "history row carries user, IP, user agent and request id: verified"


class _RawSave:
    """The statements of a tracked save, in raw SQL with their parameters prepared."""

    def __init__(self, user):
        ops = connection.ops
        fields = [f for f in Customer._meta.concrete_fields if not f.primary_key]
        self.update = "UPDATE {} SET {} WHERE {} = %s".format(
            ops.quote_name(Customer._meta.db_table),
            ", ".join(f"{ops.quote_name(f.column)} = %s" for f in fields),
            ops.quote_name(Customer._meta.pk.column),
        )
        self.fields = fields
        history = Customer.history.model._meta
        self.history_fields = [f for f in history.concrete_fields if f is not history.auto_field]
        self.insert = "INSERT INTO {} ({}) VALUES ({})".format(
            ops.quote_name(history.db_table),
            ", ".join(ops.quote_name(f.column) for f in self.history_fields),
            ", ".join(["%s"] * len(self.history_fields)),
        )
        self.context = {
            "history_type": "~",
            "history_user_id": user.pk,
            "history_change_reason": None,
            "history_channel": "",
            "history_ip": IP,
            "history_user_agent": USER_AGENT,
            "history_request_id": new_request_id(),
            "history_task_id": "",
        }

    def params(self, customer: Customer, name: str) -> tuple[list, list]:
        """UPDATE and INSERT parameters for `customer` renamed to `name`."""
        customer.full_name = name
        now = timezone.now()
        values = {f.attname: getattr(customer, f.attname) for f in Customer._meta.concrete_fields}
        values |= {"updated_at": now, "history_date": now, **self.context}
        update = [f.get_db_prep_save(values[f.attname], connection) for f in self.fields]
        update.append(customer.pk)
        insert = [f.get_db_prep_save(values[f.attname], connection) for f in self.history_fields]
        return update, insert


def _history_row(customer: Customer, user):
    """The history row simple-history's ``create_historical_record`` builds for a change."""
    fields = history_options(Customer).fields_included(customer)
    return Customer.history.model(
        history_date=timezone.now(),
        history_type="~",
        history_user=user,
        history_change_reason=None,
        **{field.attname: getattr(customer, field.attname) for field in fields},
    )


def _scenario(name, title, wrap_each, wrap_batch, batch, config, user, customers, note):
    """Time tracked, floor and untracked saves; `wrap_each` wraps one, `wrap_batch` a batch."""
    customers = customers[:batch]
    raw = _RawSave(user)

    def orm_op(save_name):
        def op(customer, name):
            customer.full_name = name
            with wrap_each():
                getattr(customer, save_name)()

        return op

    def django_op(customer, name):
        customer.full_name = name
        with wrap_each():
            customer.save_without_historical_record()
            _history_row(customer, user).save()

    def floor_op(with_history):
        def op(customer, name):
            update, insert = prepared[customer.pk, name]
            with wrap_each(), connection.cursor() as cursor:
                cursor.execute(raw.update, update)
                if with_history:
                    cursor.execute(raw.insert, insert)

        return op

    ops = {
        "tracked": orm_op("save"),
        "django alone": django_op,
        "untracked": orm_op("save_without_historical_record"),
        "floor": floor_op(True),
        "floor update": floor_op(False),
    }
    # The floor's parameters are prepared before timing: only the database's work is timed.
    names = {round_index: f"Bench {round_index}" for round_index in range(-1, config.rounds)}
    prepared = {(c.pk, name): raw.params(c, name) for c in customers for name in names.values()}

    def variant(op):
        def run_batch(round_index: int) -> None:
            name = names[round_index]
            with wrap_batch(), _context(user):
                for customer in customers:
                    op(customer, name)

        return run_batch

    per_op = measure_interleaved(
        {label: variant(op) for label, op in ops.items()}, config, batch=len(customers)
    )
    statements = {}
    for label, op in ops.items():
        with wrap_batch(), _context(user), CaptureQueriesContext(connection) as captured:
            op(customers[0], names[-1])
        statements[label] = len(captured.captured_queries)
    orm = ratios(per_op["tracked"], per_op["untracked"])
    floor = ratios(per_op["floor"], per_op["floor update"])
    django = ratios(per_op["django alone"], per_op["untracked"])
    return Result(
        name=name,
        title=title,
        variants=[VariantStats(label, per_op[label], statements[label]) for label in ops],
        ratio_label="history cost / floor cost",
        ratios=ratios(orm, floor),
        target=TARGET if name == "history_save" else None,
        notes=[note],
        extra_ratios={
            "history cost = tracked / untracked": orm,
            "floor cost = floor / floor update": floor,
            "tracked / floor": ratios(per_op["tracked"], per_op["floor"]),
            "Django's cost = django alone / untracked": django,
            "Django's cost / floor cost": ratios(django, floor),
            "tracked / django alone": ratios(per_op["tracked"], per_op["django alone"]),
        },
    )


@contextmanager
def _rolled_back():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def run(config: Config) -> list[Result]:
    user = get_user_model().objects.get(username=USERNAME)
    customers = _customers(config)
    if len(customers) < config.batch:
        raise RuntimeError(f"expected {config.batch} bench customers, found {len(customers)}")
    capture = _verify_capture(customers[0], user)
    committed = max(config.batch // 10, 4)  # saves per timed batch when each one commits
    many = replace(config, rounds=config.rounds * 3)
    return [
        _scenario(
            "history_save",
            DESCRIPTION + ": one committed transaction per save",
            transaction.atomic,
            nullcontext,
            committed,
            many,
            user,
            customers,
            f"{committed} saves per round, each in its own committed transaction; {capture}",
        ),
        _scenario(
            "history_save_autocommit",
            "the same in autocommit (tracked and floor commit twice per save)",
            nullcontext,
            nullcontext,
            committed,
            many,
            user,
            customers,
            f"{committed} saves per round, no transaction around each save",
        ),
        _scenario(
            "history_save_batched",
            "the same, all saves in one rolled-back transaction (no COMMIT)",
            nullcontext,
            _rolled_back,
            config.batch,
            config,
            user,
            customers,
            f"{config.batch} saves per round in one transaction, rolled back",
        ),
    ]
