"""The one set of anonymisers: each turns a field into a set-based SQL expression.

Erasure and purge apply them with ``QuerySet.update(**{field: anonymiser.expression(field)})``
on live rows and history rows alike, never row by row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import SHA256, Cast, Concat, Left
from django.utils.crypto import salted_hmac

from . import config

if TYPE_CHECKING:
    from .registry import ModelPrivacy

__all__ = [
    "Anonymiser",
    "ANONYMISERS",
    "about_q",
    "erasure_fields",
    "erasure_values",
    "get_anonymiser",
    "keyed_sha256",
    "keyed_sha256_text",
    "still_personal_q",
    "value_where",
]

REDACTED = "[redacted]"
_TEXT = (models.CharField, models.TextField)


def _writes_a_constant(field):
    return "writes the same value into every row"


@dataclass(frozen=True)
class Anonymiser:
    name: str
    description: str
    build: Callable[[models.Field], object]
    accepts: Callable[[models.Field], bool]
    requirement: str
    #: Why it cannot keep a unique field unique (None when it can); read by compliance.E004.
    unique_problem: Callable[[models.Field], str | None] = _writes_a_constant

    def expression(self, field: models.Field):
        """The value or SQL expression that replaces `field` in an UPDATE.

        Apply it to the live model and to its history model alike: a record and each of its
        history rows get the same result (for `hash`: wherever the value is the same).
        """
        return self.build(field)


def _fits(field, text):
    """Cut a literal to the field's max_length so the UPDATE never fails."""
    return text[: field.max_length] if getattr(field, "max_length", None) else text


def _cut(field, expression):
    """Cut an expression's text to the field's max_length, in SQL."""
    return Left(expression, field.max_length) if getattr(field, "max_length", None) else expression


def _tracked_model(field):
    """The model a field's rows belong to: for a history model, the model it tracks."""
    return getattr(field.model, "instance_type", field.model)


def _record_key(field):
    """The record's primary key column; history rows copy it under the same name (their own
    primary key is the history id)."""
    return _tracked_model(field)._meta.pk.attname


def _key_text_length(pk):
    """The longest text form of a primary key value, None when unknown."""
    if pk.is_relation:
        return _key_text_length(pk.target_field)
    if isinstance(pk, models.IntegerField):  # AutoField and BigAutoField included
        return 20  # a sign and 19 digits
    if isinstance(pk, models.UUIDField):
        return 36
    if isinstance(pk, models.CharField):
        return pk.max_length
    return None


class _Sha256Hex(SHA256):
    """Hex SHA-256 with PostgreSQL's built-in sha256() (Django's SHA256 needs pgcrypto)."""

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="encode(sha256(convert_to(%(expressions)s, 'UTF8')), 'hex')",
            **extra_context,
        )


HASH_SALT = "compliance.anonymisers.hash"
HASH_UNIQUE_LENGTH = 32  # hex digits: 128 bits, below which truncated digests may collide


def keyed_key(salt: str) -> str:
    """The hex key derived from PSEUDONYM_SECRET for `salt` (one key per use)."""
    return salted_hmac(salt, "key", secret=config.pseudonym_secret()).hexdigest()


def keyed_sha256(expression, *, salt: str = HASH_SALT):
    """SQL: the hex sha256 of `keyed_key(salt)` followed by `expression` as text.

    `keyed_sha256_text` computes the same digest in Python.
    """
    value = Concat(models.Value(keyed_key(salt)), Cast(expression, models.TextField()))
    return _Sha256Hex(value, output_field=models.CharField())


def keyed_sha256_text(text: str, *, salt: str = HASH_SALT) -> str:
    """`keyed_sha256` of a Python string, computed here."""
    return hashlib.sha256((keyed_key(salt) + text).encode("utf-8")).hexdigest()


def _hash(field):
    # Keyed, so a dictionary of likely values (emails, phone numbers) cannot reverse it; its
    # own key, so rotating SECRET_KEY leaves every pseudonym as it was.
    return _cut(field, keyed_sha256(field.attname))


def _hash_unique_problem(field):
    if getattr(field, "max_length", None) and field.max_length < HASH_UNIQUE_LENGTH:
        return f"needs max_length of at least {HASH_UNIQUE_LENGTH} to keep digests distinct"
    return None


PLACEHOLDER = ("erased-", "@erased.invalid")


def _placeholder(field):
    prefix, suffix = PLACEHOLDER
    text = Concat(
        models.Value(prefix),
        Cast(_record_key(field), models.TextField()),
        models.Value(suffix),
        output_field=models.CharField(),
    )
    return _cut(field, text)


def _placeholder_unique_problem(field):
    key = _key_text_length(_tracked_model(field)._meta.pk)
    if key is None:
        return "cannot tell how long the record's primary key is as text"
    need = len("".join(PLACEHOLDER)) + key
    if getattr(field, "max_length", None) and field.max_length < need:
        return f"needs max_length of at least {need} to keep {PLACEHOLDER[0]}<id>{PLACEHOLDER[1]}"
    return None


ANONYMISERS = {
    a.name: a
    for a in [
        Anonymiser(
            "redact",
            f"Replaced by {REDACTED}",
            lambda f: _fits(f, REDACTED),
            lambda f: isinstance(f, _TEXT),
            "a text field",
        ),
        Anonymiser(
            "blank", "Emptied", lambda f: "", lambda f: isinstance(f, _TEXT), "a text field"
        ),
        Anonymiser(
            "null",
            "Set to NULL",
            lambda f: None,
            lambda f: f.null,
            "a nullable field (null=True)",
            unique_problem=lambda f: None,  # NULLs never clash
        ),
        Anonymiser(
            "hash",
            "Replaced by a keyed SHA-256 (keeps equality, drops the value)",
            _hash,
            lambda f: isinstance(f, _TEXT),
            "a text field",
            unique_problem=_hash_unique_problem,
        ),
        Anonymiser(
            "email_placeholder",
            "Replaced by erased-<id>@erased.invalid, <id> the record's (stays unique)",
            _placeholder,
            lambda f: isinstance(f, models.CharField),
            "a CharField or EmailField",
            unique_problem=_placeholder_unique_problem,
        ),
        Anonymiser(
            "empty_json",
            "Replaced by {}",
            lambda f: models.Value({}, output_field=models.JSONField()),
            lambda f: isinstance(f, models.JSONField),
            "a JSONField",
        ),
    ]
}


def get_anonymiser(name: str) -> Anonymiser:
    try:
        return ANONYMISERS[name]
    except KeyError:
        raise ValueError(
            f"unknown anonymiser {name!r}; choose one of {', '.join(sorted(ANONYMISERS))}"
        ) from None


# What the anonymisers write on a registered model's rows (erasure and purge alike) -------


def about_q(entry: ModelPrivacy, name: str, subject_pk, *, history: bool = False) -> Q:
    """The rows whose personal field `name` is about the subject `subject_pk` (reached through
    one of the paths the field is about); an empty Q when every path is (every row of the
    subject's is)."""
    if entry.is_about_every_path(name):
        return Q()
    q = Q(pk__in=[])
    for path in entry.field_lookups(name, history=history):
        q |= Q(**{path: subject_pk})
    return q


def erasure_fields(entry: ModelPrivacy, model) -> dict[str, str]:
    """The entry's personal fields that `model` (the registered model or its history model)
    has, with their anonymiser names: a history table may leave some out (a token)."""
    present = {f.name for f in model._meta.concrete_fields}
    return {name: p.anonymiser for name, p in entry.fields.items() if name in present}


def erasure_values(entry: ModelPrivacy, model, subject_pk=None) -> dict[str, object]:
    """The UPDATE that anonymises `model`'s rows: field -> the registry anonymiser's value.

    With `subject_pk` (an erasure of that subject), a field about only some of the model's
    subject paths is anonymised only on the rows where it is about that subject: a message's
    sender name stays when its recipient is erased. Without (a purge), every row's."""
    opts = model._meta
    values = {}
    for name, anonymiser in erasure_fields(entry, model).items():
        field = opts.get_field(name)
        value = get_anonymiser(anonymiser).expression(field)
        about = Q() if subject_pk is None else _about(entry, name, subject_pk, model)
        if about:
            value = value_where(about, value, field)
        values[name] = value
    return values


def _about(entry: ModelPrivacy, name: str, subject_pk, model) -> Q:
    return about_q(entry, name, subject_pk, history=model is not entry.model)


def value_where(condition: Q, value, field) -> Case:
    """`value` on the rows `condition` matches; the others keep the field as it is."""
    if not hasattr(value, "resolve_expression"):
        value = Value(value)  # a plain value: When would read a string as a field name
    return Case(When(condition, then=value), default=F(field.attname), output_field=field)


def still_personal_q(entry: ModelPrivacy, model, subject_pk=None) -> Q:
    """Rows of `model` with a personal field that differs from its anonymised form (with
    `subject_pk`: a field about that subject, as `erasure_values` says).

    `hash` is left out of the comparison: hashing a digest gives another digest, so it would
    never look done. Its fields are rewritten together with the row's other fields.
    """
    opts = model._meta
    fields = erasure_fields(entry, model)
    settled = [name for name in fields if _settles(entry, name)]
    if not settled:
        return Q() if fields else Q(pk__in=[])
    q = Q(pk__in=[])
    for name in settled:
        value = get_anonymiser(fields[name]).expression(opts.get_field(name))
        differs = ~Q(**{name: value}) if value is not None else Q(**{f"{name}__isnull": False})
        about = Q() if subject_pk is None else _about(entry, name, subject_pk, model)
        q |= about & differs if about else differs
    return q


def _settles(entry, name) -> bool:
    return entry.fields[name].anonymiser != "hash"
