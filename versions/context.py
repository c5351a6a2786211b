"""Who is changing data, from where and why: one context for requests, commands and tasks.

The middleware opens a context per request, Celery signals one per task and
`ComplianceCommand` one per management command. History rows and ledger entries
read `current()`; nested contexts inherit whatever they do not set.
"""

from __future__ import annotations

import contextvars
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["ChangeContext", "change_context", "context_value", "current", "new_request_id"]


@dataclass(frozen=True)
class ChangeContext:
    """The circumstances of a change; empty strings mean unknown."""

    user: Any = None  # the acting user (or a lazy one); None when the system acts
    channel: str = ""  # the command or task that runs: "command:seed_demo", "task:versions…"
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""
    task_id: str = ""
    reason: str = ""

    @property
    def authenticated_user(self):
        """The acting user if one is logged in, else None (never an AnonymousUser)."""
        user = self.user
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        return user


_EMPTY = ChangeContext()
_current: contextvars.ContextVar[ChangeContext] = contextvars.ContextVar(
    "change_context", default=_EMPTY
)


def current() -> ChangeContext:
    """The context in force (an empty one outside any request, command or task)."""
    return _current.get()


def context_value(name: str):
    """One field of the context in force (history columns take their defaults from it)."""
    return getattr(_current.get(), name)


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def change_context(**values):
    """Run the block with these context values on top of the enclosing ones.

    Keys are the fields of `ChangeContext`; `None` or "" leaves the outer value.
    """
    unknown = set(values) - set(ChangeContext.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown change context fields: {', '.join(sorted(unknown))}")
    # `is None` / isinstance: comparing a lazy request.user would load it from the session.
    given = {
        key: value
        for key, value in values.items()
        if value is not None and not (isinstance(value, str) and value == "")
    }
    token = _current.set(replace(_current.get(), **given))
    try:
        yield _current.get()
    finally:
        _current.reset(token)
