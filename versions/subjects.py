"""What record versions need to know about data subjects, answered by the layer above.

The history browser filters by a data subject, and a restore never brings back fields of a
subject whose erasure is on record. Finding a subject (by key or email, a gone one too) and
reading the erasure log belong to the compliance app, which stands above this one: it
registers the answers at app-ready time (``subjects_register``), the way apps register
their models in ``privacy.py``, and this module asks the registration. Nothing registered
(an adopter without the compliance app) finds no subject and knows of no erasure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import models

__all__ = ["SubjectAmbiguous", "subject_find", "subjects_erased", "subjects_register"]


class SubjectAmbiguous(LookupError):
    """An identifier that matches more than one subject."""


@dataclass(frozen=True)
class _Answers:
    find: Callable[[str], models.Model | None]
    erased: Callable[[Iterable], set[str]]


_answers: _Answers | None = None


def subjects_register(
    *, find: Callable[[str], models.Model | None], erased: Callable[[Iterable], set[str]]
) -> None:
    """Answer for data subjects: `find` an identifier (key or email; None when nobody has
    it, SubjectAmbiguous when several do) and tell which of some keys were `erased`."""
    global _answers
    _answers = _Answers(find=find, erased=erased)


def subject_find(identifier: str) -> models.Model | None:
    """The data subject this key or email names, None when none (or nobody answers)."""
    return _answers.find(identifier) if _answers is not None else None


def subjects_erased(keys) -> set[str]:
    """Which of these subject keys an erasure is on record for (as text)."""
    return _answers.erased(keys) if _answers is not None else set()
