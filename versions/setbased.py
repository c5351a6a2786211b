"""History rows for set-based operations: written by the database, never a row at a time.

Soft delete, restore, purge and erasure change many rows with one UPDATE or DELETE, which
simple-history's signals never see. These functions make the change and copy the rows'
values into the history table in the database itself, with the change context (user, IP,
user agent, request and task id, channel, reason) filled in as simple-history's own rows
are. On PostgreSQL the change and its history rows are one statement (a data-modifying
``WITH … RETURNING``), so the rows are read once; elsewhere two, in the same transaction.
"""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db import connections, models
from django.db.models.sql import DeleteQuery, UpdateQuery
from django.utils import timezone

from .context import current

__all__ = [
    "history_model_of",
    "history_record",
    "rows_delete_with_history",
    "rows_update_with_history",
]

CREATED, CHANGED, DELETED = "+", "~", "-"
_KEYS_PER_STATEMENT = 10_000  # under SQLite's limit of bound parameters


def history_model_of(model: type[models.Model]) -> type[models.Model] | None:
    """The history model of a tracked model (whatever its manager is called), else None."""
    name = getattr(model._meta, "simple_history_manager_attribute", None)
    return getattr(model, name).model if name else None


def _constants(history_model, history_type: str, connection) -> list[tuple[str, object]]:
    """(column, database value) of every history column that is not a copy of the record:
    simple-history's date, type, user and reason, and the context columns' defaults."""
    ctx = current()
    user = ctx.authenticated_user
    computed = {
        "history_date": timezone.now(),
        "history_type": history_type,
        "history_user_id": None if user is None else user.pk,
        "history_change_reason": ctx.reason or None,
    }
    copied = {f.attname for f in history_model.tracked_fields}
    constants = []
    for field in history_model._meta.concrete_fields:
        if field.primary_key or field.attname in copied:
            continue
        value = computed[field.attname] if field.attname in computed else field.get_default()
        constants.append((field.column, field.get_db_prep_save(value, connection)))
    return constants


def _insert_history_sql(history_model, history_type, connection, source_sql, source_columns):
    """INSERT INTO history (copied…, constants…) SELECT copied…, %s… FROM (source)."""
    quote = connection.ops.quote_name
    constants = _constants(history_model, history_type, connection)
    columns = [*source_columns, *(column for column, _ in constants)]
    sql = "INSERT INTO {} ({}) SELECT {}{} FROM {}".format(
        quote(history_model._meta.db_table),
        ", ".join(map(quote, columns)),
        ", ".join(map(quote, source_columns)),
        "".join(", %s" for _ in constants),
        source_sql,
    )
    return sql, [value for _, value in constants]


def _copied_columns(model, history_model) -> list[str]:
    """The record's columns that its history rows copy (same names in both tables)."""
    return [model._meta.get_field(f.name).column for f in history_model.tracked_fields]


def history_record(queryset: models.QuerySet, *, history_type: str) -> int:
    """Insert a history row for each row of `queryset` as it is now; return how many.

    Call it after an UPDATE (history_type "~") or before a DELETE ("-"), in the same
    transaction. The user and reason are the change context's.
    """
    history_model = history_model_of(queryset.model)
    if history_model is None:
        return 0
    connection = connections[queryset.db]
    columns = _copied_columns(queryset.model, history_model)
    rows = queryset.model._base_manager.using(queryset.db).filter(pk__in=queryset.values("pk"))
    select_sql, select_params = rows.order_by().values_list(*columns).query.sql_with_params()
    sql, constants = _insert_history_sql(
        history_model, history_type, connection, f"({select_sql}) AS record", columns
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*constants, *select_params])
        return cursor.rowcount


def rows_update_with_history(queryset: models.QuerySet, values: dict) -> int:
    """UPDATE the rows of `queryset` with `values` and record their new state ("~")."""
    model, history_model = queryset.model, history_model_of(queryset.model)
    connection = connections[queryset.db]
    if history_model is None or connection.vendor != "postgresql":
        keys = list(queryset.values_list("pk", flat=True)) if history_model else []
        updated = models.QuerySet.update(queryset.order_by(), **values)
        if keys:
            history_record(
                model._base_manager.using(queryset.db).filter(pk__in=keys), history_type=CHANGED
            )
        return updated
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    compiler = query.get_compiler(queryset.db)
    compiler.pre_sql_setup()
    try:
        sql = compiler.as_sql()
    except EmptyResultSet:  # a filter no row can match (`pk__in=[]`): nothing to change
        return 0
    return _with_history(connection, model, history_model, CHANGED, *sql)


def rows_delete_with_history(queryset: models.QuerySet) -> int:
    """Record the rows of `queryset` as deleted ("-") and DELETE them, without Django's
    cascade or signals: for tables nothing else refers to."""
    model, history_model = queryset.model, history_model_of(queryset.model)
    connection = connections[queryset.db]
    if history_model is None or connection.vendor != "postgresql":
        history_record(queryset, history_type=DELETED)
        return queryset._raw_delete(queryset.db)
    query = queryset.query.clone()
    query.__class__ = DeleteQuery
    try:
        sql = query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:  # a filter no row can match (`pk__in=[]`): nothing to delete
        return 0
    return _with_history(connection, model, history_model, DELETED, *sql)


def _with_history(connection, model, history_model, history_type, change_sql, change_params):
    """One statement: the UPDATE or DELETE, RETURNING the rows it changed into history."""
    columns = _copied_columns(model, history_model)
    quote = connection.ops.quote_name
    insert_sql, constants = _insert_history_sql(
        history_model, history_type, connection, "changed", columns
    )
    sql = f"WITH changed AS ({change_sql} RETURNING {', '.join(map(quote, columns))}) {insert_sql}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*change_params, *constants])
        return cursor.rowcount
