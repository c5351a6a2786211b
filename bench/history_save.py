"""Saving a tracked Customer with context capture versus the same model untracked.

- tracked:   ``customer.save()`` inside ``change_context(user, ip, user_agent, request_id)``:
             the UPDATE plus the historical row `TrackedHistory` inserts, its context
             columns filled from `versions.context`;
- untracked: ``customer.save_without_historical_record()``: the UPDATE alone.

Both update the same existing rows with a full ``save()``, as the admin does. Four
scenarios, each its own ratio:

- ``history_save`` (the target, <= 1.5x): each save in its own committed transaction, as an
  admin change runs: the save and its history row share one transaction and one COMMIT;
- ``history_save_autocommit`` (context): no transaction around the save, so the tracked
  save commits twice: what signal-based history costs when nobody wraps it;
- ``history_save_batched`` (context): all saves of a batch in one transaction, rolled back:
  no COMMIT at all, so this is the bare statement and Python cost of the history row;
- ``history_save_sql_floor`` (context): the same two statements in raw SQL, per commit:
  the share of the database itself, which no Python-side change can go below.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import replace

from django.contrib.auth import get_user_model
from django.db import transaction

from shop.models import Customer
from versions.context import change_context, new_request_id

from .harness import Config, Result, VariantStats, measure_interleaved, ratios

DESCRIPTION = "Customer.save() tracked with context vs save_without_historical_record()"
TARGET = 1.5  # tracked may cost at most 1.5x the untracked save

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
        [Customer(email=email, name=f"Bench {email[6:11]}") for email in missing]
    )


def _customers(config: Config) -> list[Customer]:
    emails = [EMAIL.format(i) for i in range(config.batch)]
    return list(Customer.objects.filter(email__in=emails).order_by("email"))


def _context(user):
    return change_context(user=user, ip=IP, user_agent=USER_AGENT, request_id=new_request_id())


def _verify_capture(customer: Customer, user) -> str:
    """One tracked save (rolled back) must write a history row carrying the context."""
    with transaction.atomic():
        with _context(user) as ctx:
            customer.name = "Bench verify"
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


def _scenario(name, title, wrap_each, wrap_batch, batch, config, user, customers, note):
    """Time tracked vs untracked saves; `wrap_each` wraps one save, `wrap_batch` a batch."""
    customers = customers[:batch]

    def variant(save_name: str, tag: str):
        def run_batch(round_index: int) -> None:
            with wrap_batch(), _context(user):
                for i, customer in enumerate(customers):
                    customer.name = f"Bench {i} {tag}{round_index}"
                    with wrap_each():
                        getattr(customer, save_name)()

        return run_batch

    per_op = measure_interleaved(
        {
            "tracked": variant("save", "t"),
            "untracked": variant("save_without_historical_record", "u"),
        },
        config,
        batch=len(customers),
    )
    return Result(
        name=name,
        title=title,
        variants=[
            VariantStats("tracked", per_op["tracked"], 2),
            VariantStats("untracked", per_op["untracked"], 1),
        ],
        ratio_label="tracked / untracked",
        ratios=ratios(per_op["tracked"], per_op["untracked"]),
        target=TARGET if name == "history_save" else None,
        notes=[note],
    )


def _sql_floor(config, customers) -> Result:
    """The database's own share: UPDATE vs UPDATE + history INSERT, raw SQL, per commit."""
    from django.db import connection

    history = Customer.history.model._meta.db_table
    columns = [f.column for f in Customer._meta.concrete_fields]
    context = {
        "history_date": "now()",
        "history_type": "'~'",
        "history_user_id": "NULL",
        "history_ip": f"'{IP}'",
        "history_user_agent": "'bench'",
        "history_request_id": "'bench'",
        "history_task_id": "''",
        "history_channel": "''",
    }
    insert = (
        f"INSERT INTO {history} ({', '.join(columns + list(context))}) "
        f"SELECT {', '.join(columns + list(context.values()))} "
        f"FROM {Customer._meta.db_table} WHERE id = %s"
    )
    update = f"UPDATE {Customer._meta.db_table} SET name = %s WHERE id = %s"
    batch = max(config.batch // 10, 4)
    ids = [c.pk for c in customers[:batch]]

    def variant(with_history: bool):
        def run_batch(round_index: int) -> None:
            for pk in ids:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(update, [f"Bench floor {round_index}", pk])
                    if with_history:
                        cursor.execute(insert, [pk])

        return run_batch

    many = replace(config, rounds=config.rounds * 3)
    per_op = measure_interleaved(
        {"update+insert": variant(True), "update": variant(False)}, many, batch=len(ids)
    )
    return Result(
        name="history_save_sql_floor",
        title="the same in raw SQL, no ORM: what the database alone costs",
        variants=[
            VariantStats("update+insert", per_op["update+insert"], 2),
            VariantStats("update", per_op["update"], 1),
        ],
        ratio_label="update+insert / update",
        ratios=ratios(per_op["update+insert"], per_op["update"]),
        target=None,
        notes=[f"{len(ids)} committed transactions per round"],
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
            "the same, in autocommit (the tracked save commits twice)",
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
        _sql_floor(config, customers),
    ]
