"""Refusals and permission checks shared by every compliance service."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied


class ComplianceRefused(Exception):
    """The operation was refused and changed nothing; the message says why and what to do."""


def require_perm(actor, perm: str, doing: str) -> None:
    """PermissionDenied unless `actor` (None: the system) holds "app_label.codename"."""
    if actor is not None and not actor.has_perm(perm):
        raise PermissionDenied(f"{actor} may not {doing}.")
