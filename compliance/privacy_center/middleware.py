"""Language of the privacy center: only under /privacy/ does the person's choice (the
language switch, Django's language cookie) or else the browser's language apply; the admin
stays in LANGUAGE_CODE."""

from django.conf import settings
from django.utils import translation

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
