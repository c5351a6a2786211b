"""System checks: every personal-looking field is classified, every declaration is valid."""

from __future__ import annotations

import re
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from simple_history.models import HistoricalChanges

from . import config
from .anonymisers import ANONYMISERS
from .registry import Erasure, registry

__all__ = ["looks_personal", "project_models", "pseudonym_secret_check", "registry_check"]

# Tokens of a field name that suggest personal data; matched on whole underscore-separated
# words (and adjacent pairs, so user_agent matches "useragent").
PERSONAL_WORDS = frozenset(
    {
        "email",
        "mail",
        "phone",
        "mobile",
        "telephone",
        "msisdn",
        "fax",
        "name",
        "firstname",
        "lastname",
        "surname",
        "fullname",
        "username",
        "nickname",
        "address",
        "addr",
        "street",
        "postcode",
        "postal",
        "zipcode",
        "zip",
        "city",
        "location",
        "ip",
        "ipaddress",
        "remoteaddr",
        "useragent",
        "birth",
        "birthday",
        "birthdate",
        "dob",
        "ssn",
        "passport",
        "nationalid",
        "iban",
        "nationality",
        "gender",
        "latitude",
        "longitude",
        "lat",
        "lng",
        "geo",
        "avatar",
        "photo",
        "password",
        "token",
    }
)
PERSONAL_TYPES = (models.EmailField, models.GenericIPAddressField)


def looks_personal(field: models.Field) -> bool:
    """True when a concrete, non-relational field's type or name suggests personal data."""
    if field.is_relation or field.primary_key or not field.concrete:
        return False
    if isinstance(field, PERSONAL_TYPES):
        return True
    words = [w for w in re.split(r"_+", field.name.lower()) if w]
    pairs = [a + b for a, b in zip(words, words[1:], strict=False)]
    return any(word in PERSONAL_WORDS for word in words + pairs)


def _is_project_app(app_config) -> bool:
    path = Path(app_config.path).resolve()
    base = Path(settings.BASE_DIR).resolve()
    inside = base == path or base in path.parents
    return inside and not any(part in {"site-packages", "dist-packages"} for part in path.parts)


def project_models(app_configs=None):
    """Concrete models of the project's own apps, without simple-history's history models."""
    configs = app_configs if app_configs is not None else apps.get_app_configs()
    for app_config in configs:
        if not _is_project_app(app_config):
            continue
        for model in app_config.get_models():
            if model._meta.abstract or model._meta.proxy or issubclass(model, HistoricalChanges):
                continue
            yield model


def _field(model, name):
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def _is_unique(model, field) -> bool:
    """Whether the field alone must be unique: unique=True or a one-field UniqueConstraint."""
    if field.unique:
        return True
    single = [
        constraint.fields
        for constraint in model._meta.constraints
        if isinstance(constraint, models.UniqueConstraint)
    ]
    single += [tuple(fields) for fields in model._meta.unique_together]
    return (field.name,) in {tuple(fields) for fields in single}


def _resolve_subject_path(model, path, subject_model):
    """Follow a lookup path; return an error text, or None when it reaches the subject."""
    if path in ("pk", model._meta.pk.name):
        return None if model is subject_model else f"'{path}' is only valid on the subject model"
    current = model
    for part in path.split("__"):
        field = _field(current, part)
        if field is None or not field.is_relation or field.related_model is None:
            return f"'{part}' in '{path}' is not a relation of {current._meta.label}"
        current = field.related_model
    if current is not subject_model:
        return (
            f"'{path}' leads to {current._meta.label}, not the subject {subject_model._meta.label}"
        )
    return None


def _declaration_errors(entry, subject_model):
    model, label = entry.model, entry.label
    errors = []

    def error(msg, hint, code):
        errors.append(Error(msg, hint=hint, obj=model, id=f"compliance.{code}"))

    if not entry.subject_paths or not all(entry.subject_paths):
        error(
            f"{label}: the declaration names no subject path.",
            "Set subject to the lookup from this model to the subject, e.g. 'customer'.",
            "E003",
        )
    for path in filter(None, entry.subject_paths):
        problem = _resolve_subject_path(model, path, subject_model)
        if problem:
            error(
                f"{label}: subject path {problem}.",
                "Give the lookup path of foreign keys that ends at the subject model.",
                "E003",
            )
    for name, personal in entry.fields.items():
        field = _field(model, name)
        if field is None:
            error(
                f"{label}.{name} is declared personal but {label} has no such field.",
                "Fix the field name in privacy.py.",
                "E002",
            )
            continue
        anonymiser = ANONYMISERS.get(personal.anonymiser)
        if anonymiser is None:
            error(
                f"{label}.{name}: unknown anonymiser '{personal.anonymiser}'.",
                f"Choose one of: {', '.join(sorted(ANONYMISERS))}.",
                "E004",
            )
        elif not anonymiser.accepts(field):
            error(
                f"{label}.{name}: anonymiser '{anonymiser.name}' needs {anonymiser.requirement}.",
                "Pick an anonymiser that fits the field's type.",
                "E004",
            )
        elif _is_unique(model, field) and (problem := anonymiser.unique_problem(field)):
            error(
                f"{label}.{name} is unique but anonymiser '{anonymiser.name}' {problem}: "
                "the second erasure would fail.",
                "Use email_placeholder or hash on a text field long enough for them, or null "
                "on a nullable field.",
                "E004",
            )
    errors.extend(_about_errors(entry))
    if entry.subject_key_field and not isinstance(
        _field(model, entry.subject_key_field), models.CharField
    ):
        error(
            f"{label}: subject_key_field '{entry.subject_key_field}' is not a text field.",
            "Name the CharField that keeps the subject's primary key, or leave it empty.",
            "E010",
        )
    for name in entry.not_personal:
        if _field(model, name) is None:
            error(
                f"{label}.{name} is marked not personal but {label} has no such field.",
                "Fix the field name in not_personal.",
                "E002",
            )
    if entry.erasure not in Erasure.values:
        error(
            f"{label}: unknown erasure strategy '{entry.erasure}'.",
            f"Choose one of: {', '.join(Erasure.values)}.",
            "E005",
        )
    elif entry.erasure == Erasure.RETAIN and not entry.legal_ground:
        error(
            f"{label}: erasure 'retain' needs a legal_ground.",
            "Say which law or claim requires keeping the rows.",
            "E005",
        )
    if entry.retention_basis:
        field = _field(model, entry.retention_basis)
        if not isinstance(field, models.DateField):  # DateTimeField is a DateField
            error(
                f"{label}: retention_basis '{entry.retention_basis}' is not a date field.",
                "Name the DateField or DateTimeField a retention period counts from.",
                "E006",
            )
    return errors


def _about_errors(entry) -> list[Error]:
    """compliance.E009: on a model about several people, each personal field says whose it is."""
    errors, paths = [], entry.subject_paths
    for name, personal in entry.fields.items():
        unknown = [path for path in personal.about_paths if path not in paths]
        if unknown:
            errors.append(
                Error(
                    f"{entry.label}.{name} is declared about {', '.join(map(repr, unknown))}, "
                    "which is not one of the model's subject paths.",
                    hint=f"Name one or more of its subject paths: {', '.join(paths)}.",
                    obj=entry.model,
                    id="compliance.E009",
                )
            )
        elif len(paths) > 1 and not personal.about_paths:
            errors.append(
                Error(
                    f"{entry.label}.{name}: the model has several subject paths "
                    f"({', '.join(paths)}) and the field does not say whom it is about.",
                    hint="Give Personal(..., about=...) the path(s) whose subject the field "
                    "describes: an export shows it only to them and only their erasure "
                    "anonymises it (GDPR Art. 15(4)).",
                    obj=entry.model,
                    id="compliance.E009",
                )
            )
    return errors


@register(Tags.models)
def registry_check(app_configs, **kwargs):
    """compliance.E001–E007, E009, E010: classification complete and declarations valid."""
    errors = []
    try:
        subject_model = registry.subject_model()
    except (LookupError, ValueError):
        subject_model = None
        errors.append(
            Error(
                f"COMPLIANCE_SUBJECT_MODEL '{config.subject_model()}' is not an installed model.",
                hint="Set it to 'app_label.ModelName' of the model your data subjects live in.",
                id="compliance.E007",
            )
        )
    if subject_model is not None and not registry.is_registered(subject_model):
        errors.append(
            Error(
                f"The subject model {subject_model._meta.label} is not in the registry.",
                hint="Declare it in its app's privacy.py with subject = 'pk'.",
                id="compliance.E007",
            )
        )
    for model in project_models(app_configs):
        entry = registry.get(model)
        declared = {*(entry.fields if entry else ()), *registry.not_personal(model)}
        for field in model._meta.get_fields():
            if looks_personal(field) and field.name not in declared:
                errors.append(
                    Error(
                        f"{model._meta.label}.{field.name} looks like personal data but the "
                        "registry does not classify it.",
                        hint=f"Declare {model._meta.label} in its app's privacy.py with "
                        f"'{field.name}' in fields, or list it in not_personal.",
                        obj=model,
                        id="compliance.E001",
                    )
                )
    if subject_model is not None:  # declarations are checked against the subject model
        for entry in registry.entries():
            errors.extend(_declaration_errors(entry, subject_model))
    return errors


PSEUDONYM_SECRET_MIN_LENGTH = 50  # as Django asks of SECRET_KEY


@register(Tags.security, deploy=True)
def pseudonym_secret_check(app_configs, **kwargs):
    """compliance.E008: pseudonyms (the hash anonymiser) have a long key of their own."""
    secret = getattr(settings, "PSEUDONYM_SECRET", "")
    if not secret:
        problem = "PSEUDONYM_SECRET is not set: pseudonyms are keyed with SECRET_KEY"
    elif secret in (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())):
        problem = "PSEUDONYM_SECRET is the same as SECRET_KEY"
    elif len(secret) < PSEUDONYM_SECRET_MIN_LENGTH:
        problem = f"PSEUDONYM_SECRET is shorter than {PSEUDONYM_SECRET_MIN_LENGTH} characters"
    elif len(set(secret)) < 5:
        problem = "PSEUDONYM_SECRET has fewer than 5 different characters: not a random key"
    else:
        return []
    return [
        Error(
            f"{problem}.",
            hint="Set PSEUDONYM_SECRET to a long random value of its own (e.g. python -c "
            "'import secrets; print(secrets.token_urlsafe(50))') and keep it: changing it "
            "changes every pseudonym written afterwards.",
            id="compliance.E008",
        )
    ]
