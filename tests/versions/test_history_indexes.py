"""History tables are indexed for how history is read, and no more (shop 0007 and its kin).

Each history row written maintains every index of its table: an index no lookup uses is a
write for nothing, on every save, purge and erasure.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from shop.models import Customer, Document

BEFORE = ("shop", "0006_customer_full_name_required")
TRIM = ("shop", "0007_history_index_trim")
WHO = "h_customer_f11efd_who"


def _indexed_columns(model) -> list[list[str]]:
    """The column lists of the table's plain (not unique, not primary key) indexes."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return [
        info["columns"]
        for info in found.values()
        if info["index"] and not info["unique"] and not info["primary_key"]
    ]


def _index_names(model) -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, model._meta.db_table))


def _sql(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


@pytest.fixture
def at_latest(transactional_db):
    """Whatever the test does to the schema, it ends at the latest migration."""
    yield
    call_command("migrate", verbosity=0)


def test_history_keeps_the_indexes_it_is_read_by_and_drops_who_deleted(db):
    """By record, date, user, creation or deletion and data subject: indexed. By the staff
    member who soft-deleted the row: not, in history, though the live table keeps it."""
    for model, subject in ((Customer, None), (Document, "owner_id")):
        history = _indexed_columns(model.history.model)
        assert ["id"] in history and ["history_date"] in history
        assert ["history_user_id", "history_date"] in history
        assert ["history_type", "history_date"] in history
        if subject:
            assert [subject] in history
        assert ["deleted_by_id"] not in history
        assert ["deleted_by_id"] in _indexed_columns(model)


def test_user_index_leaves_out_rows_no_user_made(postgres):
    """The filter by user always names one: system rows (purges, erasures) are not in it."""
    [(definition,)] = _sql("SELECT pg_get_indexdef(to_regclass(%s))", [WHO])
    assert definition.endswith("WHERE (history_user_id IS NOT NULL)")


def test_trim_reverses_and_applies_again(at_latest):
    """Back to the indexes before the trim, and forward again, on either database."""
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    history = Customer.history.model
    assert ["deleted_by_id"] in _indexed_columns(history)
    assert "h_customer_f11efd_user" in _index_names(history)
    assert WHO not in _index_names(history)
    MigrationExecutor(connection).migrate([TRIM])
    assert ["deleted_by_id"] not in _indexed_columns(history)
    assert ["history_user_id", "history_date"] in _indexed_columns(history)
    assert WHO in _index_names(history) and "h_customer_f11efd_user" not in _index_names(history)


def test_trim_interrupted_halfway_runs_again(postgres, at_latest):
    """Not atomic: a run stopped after building the new index, or in the middle of that
    build (an invalid index), finishes on the next `migrate`, with one valid index."""
    executor = MigrationExecutor(connection)
    assert executor.loader.get_migration(*TRIM).atomic is False
    executor.migrate([BEFORE])
    _sql(  # what a build stopped by a timeout leaves behind
        f'CREATE INDEX "{WHO}" ON shop_historicalcustomer (history_user_id)'
    )
    _sql("UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass(%s)", [WHO])
    MigrationExecutor(connection).migrate([TRIM])
    [(valid, definition)] = _sql(
        "SELECT indisvalid, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indexrelid = to_regclass(%s)",
        [WHO],
    )
    assert valid and "WHERE (history_user_id IS NOT NULL)" in definition

    # A valid index of the same name is kept as it is (the same index, not a rebuilt one):
    # the operation was done before.
    [(oid,)] = _sql("SELECT to_regclass(%s)::oid", [WHO])
    executor = MigrationExecutor(connection)
    [trim] = executor.loader.get_migration(*TRIM).operations
    state = executor.loader.project_state(TRIM)
    operation = trim.steps("shop", state)[1]
    assert operation.index.name == WHO
    with connection.schema_editor(atomic=False) as editor:
        operation.database_forwards("shop", editor, state, state)
    assert _sql("SELECT to_regclass(%s)::oid", [WHO]) == [(oid,)]


def _trim_states():
    """The trim operation of the shop and the states before and after it."""
    executor = MigrationExecutor(connection)
    [trim] = executor.loader.get_migration(*TRIM).operations
    before = executor.loader.project_state(BEFORE)
    after = before.clone()
    trim.state_forwards("shop", after)
    return trim, before, after


class _NoShop:
    """A router that keeps the shop's tables off this database."""

    def allow_migrate(self, db, app_label, **hints):
        return app_label != "shop"


def test_trim_leaves_what_a_router_keeps_away_and_reverses_with_no_router(at_latest, settings):
    """The trim asks the routers per table; reversed and reapplied, each table is as before."""
    trim, before, after = _trim_states()
    history = Customer.history.model
    settings.DATABASE_ROUTERS = [f"{__name__}._NoShop"]
    with connection.schema_editor(atomic=False) as editor:
        trim.database_backwards("shop", editor, after, before)
    assert WHO in _index_names(history) and "h_customer_f11efd_user" not in _index_names(history)
    settings.DATABASE_ROUTERS = []
    with connection.schema_editor(atomic=False) as editor:
        trim.database_backwards("shop", editor, after, before)
    assert WHO not in _index_names(history) and "h_customer_f11efd_user" in _index_names(history)
    assert ["deleted_by_id"] in _indexed_columns(Document.history.model)
    with connection.schema_editor(atomic=False) as editor:
        trim.database_forwards("shop", editor, before, after)
    assert WHO in _index_names(history) and "h_customer_f11efd_user" not in _index_names(history)
    assert ["deleted_by_id"] not in _indexed_columns(Document.history.model)


def test_trim_shows_each_statement_in_sqlmigrate(transactional_db):
    """`sqlmigrate` prints every index built and dropped, new ones before old ones."""
    out = StringIO()
    call_command("sqlmigrate", "retention", "0002_history_index_trim", stdout=out)
    sql = out.getvalue()
    built = sql.index('"h_legalhold_870751_who"')
    dropped = sql.index('"h_legalhold_870751_user"')
    assert built < dropped < sql.index("placed_by_id")
    for name in ("h_retentionpolic_cb70e7_who", "h_retentionpolic_cb70e7_user", "released_by"):
        assert name in sql
