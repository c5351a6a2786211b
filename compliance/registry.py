"""The personal-data registry: what each model holds about whom, and what to do with it.

Apps declare their models in a ``privacy.py`` module, autodiscovered like ``admin.py``::

    from compliance import registry

    @registry.register(Session)
    class SessionPrivacy(registry.ModelPrivacy):
        subject = "customer"
        fields = {
            "ip_address": registry.Personal(registry.Category.ONLINE_ID, anonymiser="null"),
        }
        erasure = registry.Erasure.DELETE
        retention_basis = "created_at"

Export, erasure, purge, the inventory and the system checks read only this registry.
Declarations are validated by system checks (compliance.E002–E007, E009), not at import.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db import models
from django.db.models import Q
from django.utils.module_loading import autodiscover_modules

from . import config

__all__ = [
    "subject_q",
    "Category",
    "Erasure",
    "ModelPrivacy",
    "Personal",
    "PrivacyRegistry",
    "AlreadyRegistered",
    "register",
    "registry",
    "autodiscover",
]


class Category(models.TextChoices):
    IDENTITY = "identity", "Identity"
    CONTACT = "contact", "Contact details"
    ONLINE_ID = "online_identifier", "Online identifier"
    LOCATION = "location", "Location or address"
    CONTENT = "content", "Content by or about the subject"
    FINANCIAL = "financial", "Financial"
    BEHAVIOUR = "behaviour", "Behaviour and usage"
    CREDENTIAL = "credential", "Credential or secret"
    IMAGE = "image", "Image"


class Erasure(models.TextChoices):
    DELETE = "delete", "Delete the rows"
    ANONYMISE = "anonymise", "Anonymise the personal fields"
    RETAIN = "retain", "Retain for a legal reason"


@dataclass(frozen=True)
class Personal:
    """A personal field: its category, how to anonymise it, whether it is exported, and
    whom it is about.

    `about` names the subject path(s) of the model whose subject the field describes (a
    message's ``sender_name`` is about its ``sender``): an export shows the field only to
    them, and only their erasure anonymises it (GDPR Art. 15(4)). Empty: the field is about
    the subject of every path; a model with several paths must say (compliance.E009).
    """

    category: str
    anonymiser: str = "redact"
    exported: bool = True
    about: str | tuple[str, ...] = ()

    @property
    def about_paths(self) -> tuple[str, ...]:
        return (self.about,) if isinstance(self.about, str) else tuple(self.about)


class ModelPrivacy:
    """A model's declaration. Subclass it in ``privacy.py`` and set the attributes."""

    #: Lookup path(s) from this model to the subject's primary key: "customer",
    #: ["sender", "recipient"], or "pk" on the subject model itself.
    subject: str | list[str] = ""
    #: Personal fields by field name.
    fields: dict[str, Personal] = {}
    #: Fields whose names look personal but are not (silences compliance.E001).
    not_personal: tuple[str, ...] = ()
    #: What an erasure request does to this model's rows.
    erasure: str = Erasure.ANONYMISE
    #: Why rows are kept despite an erasure request; required when erasure is "retain".
    legal_ground: str = ""
    #: Whether the rows are part of a data-subject export (Art. 15/20).
    exported: bool = True
    #: The date or datetime field a retention period counts from.
    retention_basis: str = ""
    #: Record of processing (Art. 30): why the data is processed, and on which basis.
    purpose: str = ""
    lawful_basis: str = ""
    #: Who the rows are disclosed to (Art. 15(1)(c)), as names or categories of recipients,
    #: e.g. ("Payment provider", "Carrier"). Empty: nobody outside the controller.
    recipients: tuple[str, ...] = ()
    #: Where the data comes from when not from the subject (Art. 15(1)(g)).
    source: str = "Collected from the data subject."
    #: A text field holding the subject's primary key, kept should the subject row go (a
    #: request's ``subject_key``): the walk finds the rows by it too, so what is about a
    #: subject whose row is gone still counts as theirs.
    subject_key_field: str = ""
    #: Rows that are evidence about their subject (consent events): a retention policy on
    #: the model removes only the rows whose subject row is gone, its period counted from
    #: `retention_basis`; while the subject's row exists they are kept.
    outlives_subject: bool = False
    #: Whether a restriction of processing (Art. 18) of the subject freezes these rows
    #: (retention.holds). False only for records of how the subject's own rights are
    #: handled (their requests, their consent choices), which answering them must change.
    restriction_applies: bool = True

    def __init__(self, model: type[models.Model]):
        self.model = model

    @property
    def subject_paths(self) -> list[str]:
        return [self.subject] if isinstance(self.subject, str) else list(self.subject)

    def subject_lookups(self, *, history: bool = False) -> list[str]:
        """The subject paths as lookups on the model's rows, or on its history rows, which
        copy the record's key under its own name (their primary key is the history id) and
        keep each foreign key, so the other paths are the same."""
        return [self._lookup(path, history=history) for path in self.subject_paths]

    def field_paths(self, name: str) -> list[str]:
        """The subject paths whose subject the personal field `name` is about: those its
        declaration names, else every subject path."""
        about = self.fields[name].about_paths
        return list(about) if about else self.subject_paths

    def field_lookups(self, name: str, *, history: bool = False) -> list[str]:
        """`field_paths` as lookups on the model's rows or history rows."""
        return [self._lookup(path, history=history) for path in self.field_paths(name)]

    def is_about_every_path(self, name: str) -> bool:
        """Whether the field is about the subject whichever path reaches them."""
        return set(self.field_paths(name)) >= set(self.subject_paths)

    def _lookup(self, path: str, *, history: bool) -> str:
        if path in ("pk", self.model._meta.pk.name):
            return self.model._meta.pk.attname if history else "pk"
        return path

    @property
    def label(self) -> str:
        return self.model._meta.label

    def __repr__(self):
        return f"<{type(self).__name__} for {self.label}>"


class AlreadyRegistered(Exception):
    pass


class PrivacyRegistry:
    """Maps models to their `ModelPrivacy` declaration."""

    def __init__(self):
        self._registry: dict[type[models.Model], ModelPrivacy] = {}
        self._not_personal: dict[type[models.Model], tuple[str, ...]] = {}

    def register(self, model: type[models.Model], privacy_class: type[ModelPrivacy] | None = None):
        """Register `model`; usable as ``@registry.register(Model)`` on a class."""

        def wrap(cls):
            if model in self._registry:
                raise AlreadyRegistered(f"{model._meta.label} is already in the registry.")
            self._registry[model] = cls(model)
            return cls

        if privacy_class is not None:
            wrap(privacy_class)
            return privacy_class
        return wrap

    def declare_not_personal(self, model: type[models.Model], *fields: str) -> None:
        """Fields of a model that holds no personal data but whose names look personal
        (a policy's ``name``): silences compliance.E001 without registering the model."""
        self._not_personal[model] = (*self._not_personal.get(model, ()), *fields)

    def not_personal(self, model: type[models.Model]) -> tuple[str, ...]:
        """Fields declared not personal, by the model's entry or `declare_not_personal`."""
        entry = self._registry.get(model)
        return (*(entry.not_personal if entry else ()), *self._not_personal.get(model, ()))

    def unregister(self, model: type[models.Model]) -> None:
        self._registry.pop(model, None)

    def get(self, model: type[models.Model]) -> ModelPrivacy | None:
        return self._registry.get(model)

    def is_registered(self, model: type[models.Model]) -> bool:
        return model in self._registry

    def entries(self) -> list[ModelPrivacy]:
        """Every declaration, in app and model order."""
        return sorted(self._registry.values(), key=lambda entry: entry.label)

    def subject_model(self) -> type[models.Model]:
        return apps.get_model(config.subject_model())


registry = PrivacyRegistry()
register = registry.register


def subject_q(entry: ModelPrivacy, subject_pk, *, history: bool = False) -> Q:
    """The rows of `entry`'s model (or of its history model) about the subject `subject_pk`."""
    q = Q(pk__in=[])
    for path in entry.subject_lookups(history=history):
        q |= Q(**{path: subject_pk})
    if entry.subject_key_field:  # rows whose link went with the subject row keep the key
        q |= Q(**{entry.subject_key_field: str(subject_pk)})
    return q


def autodiscover() -> None:
    autodiscover_modules("privacy", register_to=registry)
