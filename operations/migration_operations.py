"""Index operations for migrations that run while the site serves (docs/migrations.md).

A plain ``CREATE INDEX`` blocks every write to its table while it builds, which on a large
history table is minutes. These operations build and drop indexes ``CONCURRENTLY`` on
PostgreSQL, and can run again after an interrupted run: a migration using them sets
``atomic = False`` (PostgreSQL refuses concurrent index builds inside a transaction), so a
failure halfway leaves the operations before it done, and the next ``migrate`` repeats
them all. SQLite (the demo) gets the plain operations.

- `AddIndexConcurrently`: skips an index that exists and is valid; drops an invalid one (what
  a build that stopped leaves behind) and builds it again.
- `RemoveIndexConcurrently`: ``DROP INDEX CONCURRENTLY IF EXISTS``.
- `RemoveFieldIndex`: a field's ``db_index=True`` becomes ``False``. Django's ``AlterField``
  would rebuild the whole table on SQLite for it; this drops the one index.
- `TrimHistoryIndexes`: the history tables' user index becomes partial (rows no user made
  are left out) and the history copies of who-acted foreign keys lose their index, with the
  three operations above, new indexes built before old ones are dropped.
- `SetNotNull`: a nullable column becomes NOT NULL without holding the table's exclusive lock
  through a scan of every row.
"""

from __future__ import annotations

from django.contrib.postgres import operations as postgres
from django.db import DatabaseError, migrations, models
from django.db.migrations.operations.base import Operation, OperationCategory

__all__ = [
    "AddIndexConcurrently",
    "RemoveFieldIndex",
    "RemoveIndexConcurrently",
    "SetNotNull",
    "TrimHistoryIndexes",
]


def _on_postgresql(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def _index_valid(schema_editor, name: str) -> bool | None:
    """True: the index exists and is usable; False: a stopped build left it invalid;
    None: there is none (or SQL is being collected, not run: `sqlmigrate` shows it all)."""
    if schema_editor.collect_sql:
        return None
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
            [schema_editor.quote_name(name)],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def _index_exists(schema_editor, model, name: str) -> bool:
    """SQLite: whether the table has an index of that name (False while collecting SQL)."""
    if schema_editor.collect_sql:
        return False
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        return name in connection.introspection.get_constraints(cursor, model._meta.db_table)


def _drop_concurrently(schema_editor, name: str) -> None:
    schema_editor.execute(
        f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}", params=None
    )


def _build_concurrently(schema_editor, model, index) -> None:
    """CREATE INDEX CONCURRENTLY, unless a valid index of that name is there; an invalid one
    (a build that stopped) is dropped first."""
    valid = _index_valid(schema_editor, index.name)
    if valid:
        return
    if valid is False:
        _drop_concurrently(schema_editor, index.name)
    schema_editor.add_index(model, index, concurrently=True)


def _allowed(operation, schema_editor, model) -> bool:
    """On PostgreSQL: refuse to run inside a transaction. Either database: the routers."""
    if _on_postgresql(schema_editor):
        operation._ensure_not_in_transaction(schema_editor)
    return operation.allow_migrate_model(schema_editor.connection.alias, model)


class AddIndexConcurrently(postgres.AddIndexConcurrently):
    """``AddIndex`` that leaves the table writable while the index builds (PostgreSQL)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not _allowed(self, schema_editor, model):
            return
        if _on_postgresql(schema_editor):
            _build_concurrently(schema_editor, model, self.index)
        elif not _index_exists(schema_editor, model, self.index.name):
            schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not _allowed(self, schema_editor, model):
            return
        if _on_postgresql(schema_editor):
            _drop_concurrently(schema_editor, self.index.name)
        elif schema_editor.collect_sql or _index_exists(schema_editor, model, self.index.name):
            schema_editor.remove_index(model, self.index)


class RemoveIndexConcurrently(postgres.RemoveIndexConcurrently):
    """``RemoveIndex`` that leaves the table readable and writable meanwhile (PostgreSQL)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not _allowed(self, schema_editor, model):
            return
        if _on_postgresql(schema_editor):
            _drop_concurrently(schema_editor, self.name)
        elif schema_editor.collect_sql or _index_exists(schema_editor, model, self.name):
            index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            schema_editor.remove_index(model, index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not _allowed(self, schema_editor, model):
            return
        index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
        if _on_postgresql(schema_editor):
            _build_concurrently(schema_editor, model, index)
        elif not _index_exists(schema_editor, model, index.name):
            schema_editor.add_index(model, index)


class RemoveFieldIndex(postgres.NotInTransactionMixin, migrations.AlterField):
    """A field's ``db_index`` goes from True to False: its one-column index is dropped
    (concurrently on PostgreSQL), and nothing else about the field or table changes.
    Reversed, the index is built again (concurrently on PostgreSQL)."""

    category = OperationCategory.REMOVAL

    def __init__(self, model_name, name, field, preserve_default=True):
        if field.db_index:
            raise ValueError(f"RemoveFieldIndex needs {name} with db_index=False")
        super().__init__(model_name, name, field, preserve_default)

    def describe(self):
        return f"Remove the index of {self.model_name}.{self.name}"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not _allowed(self, schema_editor, model):
            return
        column = model._meta.get_field(self.name).column
        if schema_editor.collect_sql:  # the name Django gave it
            names = [schema_editor._create_index_name(model._meta.db_table, [column])]
        else:
            names = _field_indexes(schema_editor, model, column)
        for name in names:
            if _on_postgresql(schema_editor):
                _drop_concurrently(schema_editor, name)
            else:
                schema_editor.execute(
                    f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}", params=None
                )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not _allowed(self, schema_editor, model):
            return
        field = model._meta.get_field(self.name)
        postgresql = _on_postgresql(schema_editor)
        found = []
        if not schema_editor.collect_sql:
            found = _field_indexes(schema_editor, model, field.column)
        valid = [name for name in found if not postgresql or _index_valid(schema_editor, name)]
        for name in set(found) - set(valid):  # what a stopped concurrent build left
            _drop_concurrently(schema_editor, name)
        if not valid:
            extra = {"concurrently": True} if postgresql else {}
            schema_editor.execute(
                schema_editor._create_index_sql(model, fields=[field], **extra), params=None
            )


class TrimHistoryIndexes(Operation):
    """The history index trim of one app (docs/migrations.md, ``shop/0007``), in one place.

    ``indexes`` maps each history model to the stem of its user index names: the index
    ``<stem>_user`` on (history_user_id, -history_date) gives way to ``<stem>_who``, the same
    columns without the rows no user made. ``unindexed`` maps history models to their
    who-acted foreign keys, whose index goes. The steps are the operations above, in the
    order that keeps every filter indexed: every new index is built, then the old ones are
    dropped, then the field indexes. So it inherits what they do: routers, the SQL that
    ``sqlmigrate`` shows, a run again after a stop (the migration sets ``atomic = False``),
    reversal, and plain statements on SQLite.
    """

    reduces_to_sql = True
    reversible = True
    category = OperationCategory.ALTERATION

    def __init__(self, indexes: dict[str, str], unindexed: dict[str, list[str]] | None = None):
        self.indexes = dict(indexes)
        self.unindexed = {model: list(names) for model, names in (unindexed or {}).items()}

    def deconstruct(self):
        kwargs = {"indexes": self.indexes}
        if self.unindexed:
            kwargs["unindexed"] = self.unindexed
        return self.__class__.__qualname__, [], kwargs

    def describe(self):
        return f"Trim the indexes of {len(self.indexes)} history tables"

    @property
    def migration_name_fragment(self):
        return "history_index_trim"

    def steps(self, app_label, state) -> list[Operation]:
        """The operations it is made of; a field keeps its definition in ``state`` but for
        its index."""
        steps = [
            AddIndexConcurrently(
                model_name=model_name,
                index=models.Index(
                    fields=["history_user_id", "-history_date"],
                    condition=models.Q(history_user_id__isnull=False),
                    name=f"{stem}_who",
                ),
            )
            for model_name, stem in self.indexes.items()
        ]
        steps += [
            RemoveIndexConcurrently(model_name=model_name, name=f"{stem}_user")
            for model_name, stem in self.indexes.items()
        ]
        for model_name, names in self.unindexed.items():
            for name in names:
                field = state.models[app_label, model_name.lower()].fields[name]
                *_, args, kwargs = field.deconstruct()
                kwargs["db_index"] = False
                steps.append(RemoveFieldIndex(model_name, name, field.__class__(*args, **kwargs)))
        return steps

    def state_forwards(self, app_label, state):
        for step in self.steps(app_label, state):
            step.state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        for step in self.steps(app_label, from_state):
            to_state = from_state.clone()
            step.state_forwards(app_label, to_state)
            step.database_forwards(app_label, schema_editor, from_state, to_state)
            from_state = to_state

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        before = []  # the state before each step, forwards from the migration's own
        for step in self.steps(app_label, to_state):
            before.append((step, to_state))
            to_state = to_state.clone()
            step.state_forwards(app_label, to_state)
        for step, to_state in reversed(before):
            step.database_backwards(app_label, schema_editor, from_state, to_state)
            from_state = to_state


def _field_indexes(schema_editor, model, column: str) -> list[str]:
    """Names of the plain (not unique, not primary key) indexes on exactly `column`."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return sorted(
        name
        for name, info in constraints.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and info["columns"] == [column]
        and info.get("type") == models.Index.suffix
    )


class SetNotNull(postgres.NotInTransactionMixin, migrations.AlterField):
    """A nullable field becomes required (``null=False``) while the site writes on.

    ``ALTER COLUMN … SET NOT NULL`` alone reads every row under an ACCESS EXCLUSIVE lock,
    which stops every query on the table for the length of the scan. On PostgreSQL this adds
    ``CHECK (column IS NOT NULL) NOT VALID`` (instant), validates it (the scan, under a lock
    that lets reads and writes go on), then sets NOT NULL, which PostgreSQL 12 and later
    proves from the valid check without a scan, and drops the check. Each step commits on
    its own (the migration sets ``atomic = False``); a column already NOT NULL only loses a
    check a stopped run left, so an interrupted run can run again. A NULL left in the column
    fails the validation, the check goes again, and nothing has changed. Elsewhere (SQLite):
    ``AlterField``.
    """

    category = OperationCategory.ALTERATION

    def __init__(self, model_name, name, field, preserve_default=True):
        if field.null:
            raise ValueError(f"SetNotNull needs {name} with null=False")
        super().__init__(model_name, name, field, preserve_default)

    def describe(self):
        return f"Make {self.model_name}.{self.name} NOT NULL, validated without a long lock"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if not _allowed(self, schema_editor, model):
            return
        table = model._meta.db_table
        column = model._meta.get_field(self.name).column
        quote = schema_editor.quote_name
        alter = f"ALTER TABLE {quote(table)}"
        check = quote(f"{table}_{column}_not_null"[-63:])
        drop_check = f"{alter} DROP CONSTRAINT IF EXISTS {check}"
        if not schema_editor.collect_sql and not _nullable(schema_editor, table, column):
            schema_editor.execute(drop_check, params=None)  # a run stopped before its end
            return
        schema_editor.execute(drop_check, params=None)
        schema_editor.execute(
            f"{alter} ADD CONSTRAINT {check} CHECK ({quote(column)} IS NOT NULL) NOT VALID",
            params=None,
        )
        try:
            schema_editor.execute(f"{alter} VALIDATE CONSTRAINT {check}", params=None)
        except DatabaseError:
            schema_editor.execute(drop_check, params=None)  # a NULL is left: nothing changes
            raise
        schema_editor.execute(f"{alter} ALTER COLUMN {quote(column)} SET NOT NULL", params=None)
        schema_editor.execute(drop_check, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        # DROP NOT NULL: instant. (AlterField's own backwards would call the forwards above.)
        migrations.AlterField.database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )


def _nullable(schema_editor, table: str, column: str) -> bool:
    """Whether the column exists and accepts NULL (a migration not yet run on it)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT NOT attnotnull FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attname = %s AND NOT attisdropped",
            [schema_editor.quote_name(table), column],
        )
        row = cursor.fetchone()
    return True if row is None else row[0]
