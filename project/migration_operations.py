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
- `SetNotNull`: a nullable column becomes NOT NULL without holding the table's exclusive lock
  through a scan of every row.
"""

from __future__ import annotations

from django.contrib.postgres import operations as postgres
from django.db import migrations, models
from django.db.migrations.operations.base import OperationCategory

__all__ = ["AddIndexConcurrently", "RemoveFieldIndex", "RemoveIndexConcurrently", "SetNotNull"]


def _on_postgresql(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def _index_valid(schema_editor, name: str) -> bool | None:
    """True: the index exists and is usable; False: a stopped build left it invalid;
    None: there is none."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
            [schema_editor.quote_name(name)],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def _drop_concurrently(schema_editor, name: str) -> None:
    schema_editor.execute(
        f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}", params=None
    )


def _build_concurrently(operation, schema_editor, model, index) -> None:
    operation._ensure_not_in_transaction(schema_editor)
    if not operation.allow_migrate_model(schema_editor.connection.alias, model):
        return
    valid = _index_valid(schema_editor, index.name)
    if valid:
        return
    if valid is False:
        _drop_concurrently(schema_editor, index.name)
    schema_editor.add_index(model, index, concurrently=True)


class AddIndexConcurrently(postgres.AddIndexConcurrently):
    """``AddIndex`` that leaves the table writable while the index builds (PostgreSQL)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return migrations.AddIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )
        model = to_state.apps.get_model(app_label, self.model_name)
        _build_concurrently(self, schema_editor, model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return migrations.AddIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )
        self._ensure_not_in_transaction(schema_editor)
        _drop_concurrently(schema_editor, self.index.name)


class RemoveIndexConcurrently(postgres.RemoveIndexConcurrently):
    """``RemoveIndex`` that leaves the table readable and writable meanwhile (PostgreSQL)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return migrations.RemoveIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )
        self._ensure_not_in_transaction(schema_editor)
        _drop_concurrently(schema_editor, self.name)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return migrations.RemoveIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )
        model = to_state.apps.get_model(app_label, self.model_name)
        index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
        _build_concurrently(self, schema_editor, model, index)


class RemoveFieldIndex(postgres.NotInTransactionMixin, migrations.AlterField):
    """A field's ``db_index`` goes from True to False: its one-column index is dropped
    (concurrently on PostgreSQL), and nothing else about the field or table changes."""

    category = OperationCategory.REMOVAL

    def __init__(self, model_name, name, field, preserve_default=True):
        if field.db_index:
            raise ValueError(f"RemoveFieldIndex needs {name} with db_index=False")
        super().__init__(model_name, name, field, preserve_default)

    def describe(self):
        return f"Remove the index of {self.model_name}.{self.name}"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        postgresql = _on_postgresql(schema_editor)
        if postgresql:
            self._ensure_not_in_transaction(schema_editor)
        column = model._meta.get_field(self.name).column
        for name in _field_indexes(schema_editor, model, column):
            if postgresql:
                _drop_concurrently(schema_editor, name)
            else:
                schema_editor.execute(
                    f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}", params=None
                )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        field = model._meta.get_field(self.name)
        if not _field_indexes(schema_editor, model, field.column):
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


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
    its own (the migration sets ``atomic = False``); a column already NOT NULL is left as it
    is, so an interrupted run can run again. A NULL left in the column fails the validation
    and changes nothing. Elsewhere (SQLite): ``AlterField``.
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
        self._ensure_not_in_transaction(schema_editor)
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        table = model._meta.db_table
        column = model._meta.get_field(self.name).column
        if not _nullable(schema_editor, table, column):
            return
        quote = schema_editor.quote_name
        check = quote(f"{table}_{column}_not_null"[-63:])
        for sql in (
            f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {check}",
            f"ALTER TABLE {quote(table)} ADD CONSTRAINT {check} "
            f"CHECK ({quote(column)} IS NOT NULL) NOT VALID",
            f"ALTER TABLE {quote(table)} VALIDATE CONSTRAINT {check}",
            f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} SET NOT NULL",
            f"ALTER TABLE {quote(table)} DROP CONSTRAINT {check}",
        ):
            schema_editor.execute(sql, params=None)

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
