"""History rows for set-based operations: one ``INSERT … SELECT`` per statement, never a row
at a time.

Soft delete, restore, purge and erasure change many rows with one UPDATE or DELETE, which
simple-history's signals never see. `history_record` copies the rows' current values into
the history table in the database itself, with the change context (user, IP, user agent,
request and task id, channel, reason) filled in as simple-history's own rows are.
"""

from __future__ import annotations

from django.db import connections, models, router
from django.utils import timezone

from .context import current

__all__ = ["history_model_of", "history_record"]

CREATED, CHANGED, DELETED = "+", "~", "-"
# Columns simple-history computes for every row; the rest come from the record or a default.
_COMPUTED = ("history_date", "history_type", "history_user_id", "history_change_reason")


def history_model_of(model: type[models.Model]) -> type[models.Model] | None:
    """The history model of a tracked model (whatever its manager is called), else None."""
    name = getattr(model._meta, "simple_history_manager_attribute", None)
    return getattr(model, name).model if name else None


def history_record(queryset: models.QuerySet, *, history_type: str) -> int:
    """Insert a history row for each row of `queryset` as it is now; return how many.

    Call it after an UPDATE (history_type "~") or before a DELETE ("-"), in the same
    transaction. The user and reason are the change context's.
    """
    history_model = history_model_of(queryset.model)
    if history_model is None:
        return 0
    ctx = current()
    user = ctx.authenticated_user
    computed = {
        "history_date": (timezone.now(), models.DateTimeField()),
        "history_type": (history_type, models.CharField()),
        "history_user_id": (None if user is None else user.pk, models.BigIntegerField()),
        "history_change_reason": (ctx.reason or None, models.TextField()),
    }
    copied = [f.attname for f in history_model.tracked_fields]
    constants = {}
    for field in history_model._meta.concrete_fields:
        if field.primary_key or field.attname in copied:
            continue
        if field.attname in computed:
            value, output = computed[field.attname]
        else:
            value, output = field.get_default(), field
        constants[field.attname] = models.Value(value, output_field=output)
    # Model columns first, then the constants, in the order annotated: the SELECT's order.
    source = (
        queryset.model._base_manager.filter(pk__in=queryset.values("pk"))
        .order_by()
        .annotate(**{f"_h_{name}": value for name, value in constants.items()})
        .values_list(*copied, *(f"_h_{name}" for name in constants))
    )
    alias = router.db_for_write(history_model)
    connection = connections[alias]
    select_sql, params = source.query.sql_with_params()
    quote = connection.ops.quote_name
    columns = [history_model._meta.get_field(name).column for name in [*copied, *constants]]
    sql = "INSERT INTO {} ({}) {}".format(
        quote(history_model._meta.db_table), ", ".join(map(quote, columns)), select_sql
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
