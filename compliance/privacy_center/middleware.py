"""Middleware of the privacy center.

Language: only under /privacy/ does the person's choice (the language switch, Django's
language cookie) or else the browser's language apply; the admin stays in LANGUAGE_CODE.

Global Privacy Control, honoured on the server before the response is produced: a request
carrying `Sec-GPC: 1` from a known subject — the person of an open preferences session, or a
signed-in user of the host site mapped to a subject by the callable named in
COMPLIANCE_SUBJECT_FOR_USER — records an opt-out (source "GPC") of every purpose flagged sale
or sharing, once per subject and purpose (`gpc_honour`). It runs before the view, so before
any page script could read `navigator.globalPrivacyControl`; a request without the header
changes nothing. `request.gpc` tells views whether the signal is on.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
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


PREFIX = "/privacy/"


def privacy_language(request) -> str:
    """The language for a request under /privacy/: the switch's cookie, then
    Accept-Language, else English."""
    supported = {code for code, _ in settings.LANGUAGES}
    language = translation.get_language_from_request(request)
    return language if language in supported else "en"


class PrivacyLanguageMiddleware:
    """Activate the person's language for the privacy center's pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(PREFIX):
            return self.get_response(request)
        language = privacy_language(request)
        with translation.override(language):
            request.LANGUAGE_CODE = language
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        vary = response.headers.get("Vary", "")
        if "Accept-Language" not in vary:
            response.headers["Vary"] = f"{vary}, Accept-Language" if vary else "Accept-Language"
        return response
