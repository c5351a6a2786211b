"""Global Privacy Control, honoured on the server before the response is produced.

A request carrying `Sec-GPC: 1` from a known subject — the person of an open preferences
session, or a signed-in user of the host site mapped to a subject by the callable named in
COMPLIANCE_SUBJECT_FOR_USER — records an opt-out (source "GPC") of every purpose flagged sale
or sharing, once per subject and purpose (`gpc_honour`). It runs before the view, so before
any page script could read `navigator.globalPrivacyControl`; a request without the header
changes nothing. `request.gpc` tells views whether the signal is on.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.middleware.locale import LocaleMiddleware
from django.urls import reverse
from django.utils import translation

from versions.middleware import USER_AGENT_MAX, client_ip

from .. import config
from ..registry import registry
from ..services import gpc_honour

#: The session key holding the subject key of an open preferences session.
PREFERENCES_SESSION_KEY = "privacy_preferences_subject"


def preferences_subject(request):
    """The subject of the request's preferences session, else None."""
    session = getattr(request, "session", None)
    key = session.get(PREFERENCES_SESSION_KEY) if session is not None else None
    if key is None:
        return None
    try:
        return registry.subject_model()._default_manager.filter(pk=key).first()
    except (ValueError, ValidationError):
        return None  # a key of another subject model: the session is not ours


def known_subject(request):
    """The subject a request comes from: its preferences session, else the host site's
    mapping of the signed-in user, else None."""
    subject = preferences_subject(request)
    if subject is not None:
        return subject
    user = getattr(request, "user", None)
    mapping = config.subject_for_user()
    if mapping is None or user is None or not user.is_authenticated:
        return None
    return mapping(user)


class GlobalPrivacyControlMiddleware:
    """Records the opt-out a `Sec-GPC: 1` request signals; after sessions and authentication."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.gpc = request.headers.get("Sec-GPC", "").strip() == "1"
        if request.gpc:
            subject = known_subject(request)
            if subject is not None:
                gpc_honour(
                    subject=subject,
                    ip=client_ip(request),
                    user_agent=request.headers.get("User-Agent", "")[:USER_AGENT_MAX],
                )
        return self.get_response(request)


class PrivacyCenterLocaleMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware (the browser's language, or the one chosen on the page),
    under /privacy/ only: the admin keeps LANGUAGE_CODE. The active language is per thread
    and outlives the request, so every other request resets it."""

    def _applies(self, request) -> bool:
        return request.path_info.startswith(reverse("privacy_center:home"))

    def process_request(self, request):
        if self._applies(request):
            super().process_request(request)
        else:
            translation.deactivate()

    def process_response(self, request, response):
        if self._applies(request):
            return super().process_response(request, response)
        return response
