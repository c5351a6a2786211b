"""The worked expand-contract example: customer `name` becomes `full_name` (shop 0002-0006).

Each test walks the shop's migrations back and forth with Django's MigrationExecutor and
leaves the database at the latest migration.
"""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from operations.backfill import column_backfill

INITIAL = ("shop", "0001_initial")
EXPAND = ("shop", "0002_customer_full_name_expand")
SWITCH = ("shop", "0004_customer_full_name_code_switch")
CONTRACT = ("shop", "0005_customer_full_name_contract")


def _migrate(target):
    """Migrate the shop to `target`; returns the models as of that migration."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state(target, at_end=True).apps


def _columns(table):
    with connection.cursor() as cursor:
        return {c.name for c in connection.introspection.get_table_description(cursor, table)}


def _applied(name):
    return MigrationRecorder(connection).migration_qs.filter(app="shop", name=name).exists()


@pytest.fixture
def at_latest(transactional_db):
    """Whatever the test does to the schema, it ends at the latest migration."""
    yield
    call_command("migrate", verbosity=0)


def _old_style_rows(apps):
    """A customer and its history row written by code that knows only `name`."""
    customer = apps.get_model("shop", "Customer")._base_manager.create(
        email="old@example.org", name="Old Ada"
    )
    apps.get_model("shop", "HistoricalCustomer")._base_manager.create(
        id=customer.pk,
        email="old@example.org",
        name="Old Ada",
        created_at=timezone.now(),
        updated_at=timezone.now(),
        history_date=timezone.now(),
        history_type="+",
    )
    return customer.pk


def test_contract_refuses_until_backfilled_then_drops_name(at_latest):
    """Rows from before the expand keep their names: the contract waits for the backfill."""
    pk = _old_style_rows(_migrate(INITIAL))
    expand = _migrate(EXPAND)
    customers = expand.get_model("shop", "Customer")._base_manager
    assert customers.get(pk=pk).full_name is None  # the expand copies nothing itself

    with pytest.raises(CommandError, match="Run the backfill first") as refused:
        _migrate(CONTRACT)
    assert "1 in shop.Customer, 1 in shop.HistoricalCustomer" in str(refused.value)
    assert "backfill shop.Customer full_name --from name" in str(refused.value)
    assert _applied(SWITCH[1]) and not _applied(CONTRACT[1])
    assert "name" in _columns("shop_customer") and "name" in _columns("shop_historicalcustomer")

    for model in ("Customer", "HistoricalCustomer"):
        report = column_backfill(
            model=expand.get_model("shop", model), target="full_name", source="name", batch_size=1
        )
        assert report.finished and report.rows == 1

    _migrate(CONTRACT)
    assert "name" not in _columns("shop_customer")
    assert "name" not in _columns("shop_historicalcustomer")
    from shop.models import Customer

    assert Customer.all_objects.get(pk=pk).full_name == "Old Ada"
    assert Customer.history.model.objects.get(id=pk).full_name == "Old Ada"


def test_contract_reversed_gives_the_names_back(at_latest):
    """Migrating back past the contract re-adds `name`, filled from `full_name`."""
    from shop.models import Customer

    pk = Customer.objects.create(email="ada@example.org", full_name="Ada Lovelace").pk
    expand = _migrate(EXPAND)
    assert expand.get_model("shop", "Customer")._base_manager.get(pk=pk).name == "Ada Lovelace"


def test_backfill_command_reads_a_column_the_code_dropped(at_latest):
    """--as-of the expand migration, the command sees `name` although the code does not."""
    _old_style_rows(_migrate(INITIAL))
    _migrate(SWITCH)
    for model in ("shop.Customer", "shop.HistoricalCustomer"):
        call_command(
            "backfill", model, "full_name", "--from", "name",
            "--as-of", "0002_customer_full_name_expand", stdout=StringIO(),
        )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT full_name FROM shop_customer")
        assert cursor.fetchall() == [("Old Ada",)]
        cursor.execute("SELECT full_name FROM shop_historicalcustomer")
        assert cursor.fetchall() == [("Old Ada",)]


def _sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def test_sync_trigger_keeps_both_columns_in_step(postgres, at_latest):
    """On PostgreSQL, between expand and contract, old and new code see each other's writes."""
    _migrate(EXPAND)
    insert = (
        "INSERT INTO shop_customer (email, {column}, phone, avatar_url, created_at, updated_at)"
        " VALUES (%s, %s, '', '', now(), now()) RETURNING id"
    )
    old = _sql(insert.format(column="name"), ["old@example.org", "Written by old code"])[0][0]
    new = _sql(insert.format(column="full_name"), ["new@example.org", "Written by new"])[0][0]
    both = "SELECT name, full_name FROM shop_customer WHERE id = %s"
    assert _sql(both, [old]) == [("Written by old code", "Written by old code")]
    assert _sql(both, [new]) == [("Written by new", "Written by new")]

    _sql("UPDATE shop_customer SET name = 'Renamed by old code' WHERE id = %s", [old])
    _sql("UPDATE shop_customer SET full_name = 'Renamed by new' WHERE id = %s", [new])
    assert _sql(both, [old]) == [("Renamed by old code", "Renamed by old code")]
    assert _sql(both, [new]) == [("Renamed by new", "Renamed by new")]

    _sql(
        "INSERT INTO shop_historicalcustomer (id, email, full_name, phone, avatar_url, created_at,"
        " updated_at, history_date, history_type, history_channel, history_user_agent,"
        " history_request_id, history_task_id) VALUES"
        " (%s, 'new@example.org', 'History', '', '', now(), now(), now(), '~', '', '', '', '')",
        [new],
    )
    assert _sql("SELECT name FROM shop_historicalcustomer WHERE id = %s", [new]) == [("History",)]

    _migrate(CONTRACT)
    assert _sql("SELECT count(*) FROM pg_trigger WHERE tgname = 'shop_customer_name_sync'") == [
        (0,)
    ]


INDEX_VALID = (
    "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('shop_customer_full_name_live')"
)


def test_full_name_index_is_built_concurrently_and_a_stopped_build_is_redone(postgres, at_latest):
    """The index migration runs outside a transaction (CONCURRENTLY); an invalid index left
    by a stopped build is dropped and built again on the next run."""
    executor = MigrationExecutor(connection)
    assert executor.loader.get_migration("shop", "0003_customer_full_name_index").atomic is False
    assert _sql(INDEX_VALID) == [(True,)]

    _migrate(EXPAND)
    assert _sql(INDEX_VALID) == []  # the reverse dropped it
    _sql('CREATE INDEX "shop_customer_full_name_live" ON shop_customer (full_name)')
    _sql(  # what a build stopped by a timeout leaves behind
        "UPDATE pg_index SET indisvalid = false "
        "WHERE indexrelid = to_regclass('shop_customer_full_name_live')"
    )
    _migrate(("shop", "0003_customer_full_name_index"))
    assert _sql(INDEX_VALID) == [(True,)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef(to_regclass('shop_customer_full_name_live'))")
        assert "WHERE (deleted_at IS NULL)" in cursor.fetchone()[0]


REQUIRED = ("shop", "0006_customer_full_name_required")


def _nullable(table, column):
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(cursor, table)
    return next(c.null_ok for c in description if c.name == column)


def test_full_name_becomes_required_through_a_validated_check(postgres, at_latest):
    """Not atomic: a NULL left in full_name fails the validation and changes nothing; once
    filled, the column is NOT NULL and the check that proved it is gone. Run again, it is
    left as it is."""
    executor = MigrationExecutor(connection)
    assert executor.loader.get_migration(*REQUIRED).atomic is False
    contracted = _migrate(CONTRACT)
    assert _nullable("shop_customer", "full_name")
    pk = contracted.get_model("shop", "Customer")._base_manager.create(email="n@example.org").pk

    with pytest.raises(Exception, match="is violated by some row"):
        _migrate(REQUIRED)
    assert _nullable("shop_customer", "full_name")
    assert not _applied(REQUIRED[1])
    assert _checks() == []  # the check that failed is gone: inserts are as they were

    _sql("UPDATE shop_customer SET full_name = 'Named' WHERE id = %s", [pk])
    _migrate(REQUIRED)
    assert not _nullable("shop_customer", "full_name")
    assert not _nullable("shop_historicalcustomer", "full_name")
    assert _checks() == []

    # A run stopped after SET NOT NULL left its check: the next run only drops it.
    _sql(
        "ALTER TABLE shop_customer ADD CONSTRAINT shop_customer_full_name_not_null "
        "CHECK (full_name IS NOT NULL)"
    )
    operation = MigrationExecutor(connection).loader.get_migration(*REQUIRED).operations[0]
    state = MigrationExecutor(connection).loader.project_state(REQUIRED)
    with connection.schema_editor(atomic=False) as editor:
        operation.database_forwards("shop", editor, state, state)
    assert _checks() == [] and not _nullable("shop_customer", "full_name")


def _checks():
    return _sql("SELECT conname FROM pg_constraint WHERE conname LIKE %s", ["%full_name_not_null"])
