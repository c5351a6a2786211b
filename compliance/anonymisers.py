"""The one set of anonymisers: each turns a field into a set-based SQL expression.

Erasure and purge apply them with ``QuerySet.update(**{field: anonymiser.expression(field)})``
on live rows and history rows alike, never row by row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import models
from django.db.models.functions import SHA256, Cast, Concat, Left
from django.utils.crypto import salted_hmac

__all__ = ["Anonymiser", "ANONYMISERS", "get_anonymiser"]

REDACTED = "[redacted]"
_TEXT = (models.CharField, models.TextField)


@dataclass(frozen=True)
class Anonymiser:
    name: str
    description: str
    build: Callable[[models.Field], object]
    accepts: Callable[[models.Field], bool]
    requirement: str

    def expression(self, field: models.Field):
        """The value or SQL expression that replaces `field` in an UPDATE."""
        return self.build(field)


def _fits(field, text):
    """Cut a literal to the field's max_length so the UPDATE never fails."""
    return text[: field.max_length] if getattr(field, "max_length", None) else text


class _Sha256Hex(SHA256):
    """Hex SHA-256 with PostgreSQL's built-in sha256() (Django's SHA256 needs pgcrypto)."""

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="encode(sha256(convert_to(%(expressions)s, 'UTF8')), 'hex')",
            **extra_context,
        )


def _hash(field):
    # Keyed, so a dictionary of likely values (emails, phone numbers) cannot reverse it.
    key = salted_hmac("compliance.anonymisers.hash", "key").hexdigest()
    value = Concat(models.Value(key), Cast(field.attname, models.TextField()))
    digest = _Sha256Hex(value, output_field=models.CharField())
    return Left(digest, field.max_length) if getattr(field, "max_length", None) else digest


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
            "null", "Set to NULL", lambda f: None, lambda f: f.null, "a nullable field (null=True)"
        ),
        Anonymiser(
            "hash",
            "Replaced by a keyed SHA-256 (keeps equality, drops the value)",
            _hash,
            lambda f: isinstance(f, _TEXT),
            "a text field",
        ),
        Anonymiser(
            "email_placeholder",
            "Replaced by erased-<id>@erased.invalid (stays unique)",
            lambda f: Concat(
                models.Value("erased-"),
                Cast("pk", models.TextField()),
                models.Value("@erased.invalid"),
                output_field=models.CharField(),
            ),
            lambda f: isinstance(f, models.CharField),
            "a CharField or EmailField",
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
