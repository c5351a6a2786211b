"""Every value a model admin takes from a request is validated before it reaches a query
(DESIGN.md contract 9); the admin site adds this to each ModelAdmin, as it adds the registry's
rules.

- List filters: the changelist's query is built, and compiled, before anything runs; a filter
  value its field cannot take (`?created_at__year=99999`, `?id__exact=abc`, a 13th month) is
  a 400 that says which, not Django's "database installation" page or a server error.
  An integer beyond the database's integer range (`?customer=99999999999999999999999`,
  which SQLite cannot bind) is refused so too, on both databases.
- Actions: each selected id (`_selected_action`) must be a value of the model's key, within
  its column's range, else the list comes back with a message and nothing runs.
- Foreign keys picked by search (autocomplete): a posted value that is no key (`customer=abc`,
  or a number beyond the key column's range) is the field's error; the widget shows it again
  without querying with it. Many-to-many choices (`groups=`) are checked so too.
- JSON fields: only JSON PostgreSQL stores (no NaN or infinity, no NUL character), nested at
  most 64 levels deep.
- An empty `_to_field=` on a change or delete page means the key.
- Searches (`q`), which can hold an email, a name or a phone, are posted (and a `?q=` link
  is turned into one): the list's address carries a short-lived search token instead
  (versions/search_tokens.py, DESIGN.md contract 8).

NUL characters anywhere in a request are refused before any view (project/middleware.py).
"""

import json
import math

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR, SEARCH_VAR, ChangeList
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import BadRequest, EmptyResultSet, FullResultSet, ValidationError
from django.db import connections, models
from django.http import HttpResponseRedirect, QueryDict

from versions.search_tokens import SEARCH_TOKEN_PARAM, search_token_load, search_token_store

__all__ = ["StrictJSONField", "ValidatedInputsAdminMixin", "with_validated_inputs"]

_MALFORMED = (ValidationError, ValueError, TypeError, OverflowError)


class ValidatedChangeList(ChangeList):
    """A changelist whose query is compiled when it is built, so that a filter value its
    field cannot take is refused before the page runs it."""

    def get_queryset(self, request, exclude_parameters=None):
        try:
            # The date hierarchy's values become dates here: a year past 9999 overflows.
            queryset = super().get_queryset(request, exclude_parameters)
        except _MALFORMED as exc:
            raise IncorrectLookupParameters(exc) from exc
        try:
            _, params = queryset.query.get_compiler(using=queryset.db).as_sql()
        except (EmptyResultSet, FullResultSet):
            return queryset  # valid: a filter that matches nothing, or everything
        except _MALFORMED as exc:
            raise IncorrectLookupParameters(exc) from exc
        for value in params:
            if not _in_integer_range(value, "BigIntegerField", queryset.db):
                raise IncorrectLookupParameters(f"{value} is beyond any integer column's range")
        return queryset


class _KnownKeysOnly:
    """An autocomplete widget that shows again only the posted values that are keys: the
    form says what is wrong with the others, and no query runs with them."""

    def optgroups(self, name, value, attr=None):
        target, using = self.field.target_field, self.db or "default"
        return super().optgroups(name, [v for v in value if _is_key(target, v, using)], attr)


def _is_key(field, value, using="default") -> bool:
    if value in (None, ""):
        return True
    try:
        value = field.get_prep_value(field.to_python(value))
    except _MALFORMED:
        return False
    while field.is_relation:  # a key that is itself a foreign key: its target's column
        field = field.target_field
    return _in_integer_range(value, field.get_internal_type(), using)


def _in_integer_range(value, internal_type: str, using: str) -> bool:
    """Whether VALUE, if an integer, fits the database's column for INTERNAL_TYPE (SQLite
    cannot bind an integer beyond 64 bits; PostgreSQL's int columns are narrower still)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return True
    try:
        low, high = connections[using].ops.integer_field_range(internal_type)
    except KeyError:
        return True  # not an integer column
    return (low is None or low <= value) and (high is None or value <= high)


class _KeysInRangeField(forms.ModelMultipleChoiceField):
    """Keys chosen from a list (many-to-many): a value that is no key of the list, or
    beyond its column's range, is the field's error before any query runs with it."""

    def _check_values(self, value):
        if isinstance(value, (list, tuple)):
            opts = self.queryset.model._meta
            key = opts.get_field(self.to_field_name) if self.to_field_name else opts.pk
            for pk in value:
                if not _is_key(key, pk, self.queryset.db):
                    raise ValidationError(
                        self.error_messages["invalid_pk_value"],
                        code="invalid_pk_value",
                        params={"pk": pk},
                    )
        return super()._check_values(value)


class _Autocomplete(_KnownKeysOnly, AutocompleteSelect):
    pass


class _AutocompleteMultiple(_KnownKeysOnly, AutocompleteSelectMultiple):
    pass


def _finite(value):
    raise ValueError(f"{value} is not a number JSON can store")


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


MAX_JSON_DEPTH = 64


def _depth(value) -> int:
    """How deeply VALUE's lists and objects nest, counted without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
    return deepest


class StrictJSONField(forms.JSONField):
    """JSON as PostgreSQL's jsonb stores it: no NaN, no infinity (1e309), no NUL character;
    and nested at most MAX_JSON_DEPTH levels, which every reader can walk."""

    default_error_messages = {
        "invalid": "Enter valid JSON: numbers must be finite (no NaN or Infinity), and text "
        "may not contain the NUL character (\\u0000).",
        "too_deep": f"Enter JSON nested at most {MAX_JSON_DEPTH} levels deep.",
    }

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:  # shown again as posted
            return forms.fields.InvalidJSONInput(data)

    def to_python(self, value):
        if self.disabled or isinstance(value, (dict, list, int, float)):
            return super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            converted = json.loads(value, cls=self.decoder, parse_constant=_finite)
        except RecursionError:
            raise ValidationError(self.error_messages["too_deep"], code="too_deep") from None
        except (json.JSONDecodeError, ValueError):
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        if _depth(converted) > MAX_JSON_DEPTH:
            raise ValidationError(self.error_messages["too_deep"], code="too_deep")
        if _not_storable(converted):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return converted if not isinstance(converted, str) else forms.fields.JSONString(converted)


def _not_storable(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_not_storable(v) for v in value.values()) or _has_nul(list(value))
    if isinstance(value, list):
        return any(_not_storable(v) for v in value)
    return _has_nul(value)


class ValidatedInputsAdminMixin:
    """The checks above on a model admin (see the module's docstring)."""

    def get_changelist(self, request, **kwargs):
        changelist = super().get_changelist(request, **kwargs)
        if issubclass(changelist, ValidatedChangeList):
            return changelist
        return type("Validated" + changelist.__name__, (ValidatedChangeList, changelist), {})

    def changelist_view(self, request, extra_context=None):
        term = None
        if request.method == "POST" and not {"index", "_save"} & set(request.POST):
            term = request.POST.get(SEARCH_VAR)
        elif request.method == "GET" and self.search_fields:
            term = request.GET.get(SEARCH_VAR)
        if term is None:
            return super().changelist_view(request, extra_context)
        # A search can name a person: the list's address carries a token instead of the term.
        query = request.GET.copy()
        for name in (SEARCH_VAR, SEARCH_TOKEN_PARAM, PAGE_VAR):
            query.pop(name, None)
        if term.strip():
            query[SEARCH_TOKEN_PARAM] = search_token_store(request, {SEARCH_VAR: term})
        return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")

    def get_changelist_instance(self, request):
        original, token = request.GET, request.GET.get(SEARCH_TOKEN_PARAM)
        if token is not None:
            # The list searches for the token's term; its links carry the token again.
            stored = search_token_load(request, token)
            if stored is None:
                messages.warning(request, "This search has expired: search again.")
            request.GET = original.copy()
            request.GET.pop(SEARCH_TOKEN_PARAM)
            request.GET[SEARCH_VAR] = (stored or {}).get(SEARCH_VAR, "")
        try:
            changelist = super().get_changelist_instance(request)
        except IncorrectLookupParameters as exc:
            raise BadRequest(
                f"This list cannot be filtered so: {exc or 'a filter value is malformed'}. "
                "Remove the filter and choose it again from the list."
            ) from exc
        finally:
            request.GET = original
        if token is not None:
            changelist.params.pop(SEARCH_VAR, None)
            changelist.filter_params.pop(SEARCH_VAR, None)
            changelist.params[SEARCH_TOKEN_PARAM] = token
            changelist.filter_params[SEARCH_TOKEN_PARAM] = [token]
            # The links the list built while it searched: the token again, not the term.
            for name in ("add_facet_link", "remove_facet_link", "clear_all_filters_qs"):
                setattr(changelist, name, _with_token(getattr(changelist, name), token))
        return changelist

    def get_object(self, request, object_id, from_field=None):
        # An empty `_to_field=` means the key, as no parameter does (Django looks up a field
        # named "" otherwise).
        return super().get_object(request, object_id, from_field or None)

    def response_action(self, request, queryset):
        pk = self.model._meta.pk
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        using = queryset.db
        if not all(_is_key(pk, value, using) and value != "" for value in selected):
            self.message_user(
                request,
                "The selection holds a value that is not an item of this list: select the "
                "items again. Nothing was done.",
                messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = _Autocomplete(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", _KeysInRangeField)
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = _AutocompleteMultiple(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.JSONField):
            kwargs.setdefault("form_class", StrictJSONField)
        return super().formfield_for_dbfield(db_field, request, **kwargs)


def _with_token(query_string, token):
    if not query_string:
        return query_string
    query = QueryDict(query_string.lstrip("?"), mutable=True)
    if query.pop(SEARCH_VAR, None) is not None:
        query[SEARCH_TOKEN_PARAM] = token
    return f"?{query.urlencode()}"


def with_validated_inputs(admin_class):
    """`admin_class` with `ValidatedInputsAdminMixin` in front (itself if it has it already)."""
    if issubclass(admin_class, ValidatedInputsAdminMixin):
        return admin_class
    attrs = {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__}
    return type(admin_class.__name__, (ValidatedInputsAdminMixin, admin_class), attrs)
