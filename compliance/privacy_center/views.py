"""The privacy center's pages: thin views over the compliance services."""

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from versions.middleware import USER_AGENT_MAX, client_ip

from .. import config
from ..models import AccessLink
from ..selectors import consent_preferences
from ..services import ComplianceRefused, consent_choose
from ..services.links import access_link_resolve
from .forms import ConsentChoiceForm
from .middleware import PREFERENCES_SESSION_KEY, preferences_subject


@require_safe
def home(request):
    """What a person can do here: start a request or set their consent preferences."""
    return TemplateResponse(request, "privacy/home.html")


@require_safe
def preferences_open(request, token):
    """A consent-preferences link: opens a preferences session for the link's person (a new
    session key, so none planted before carries over) and leaves the token out of the address
    bar. Unknown, expired, revoked or other links: 403 and the way to a new one."""
    link = access_link_resolve(token=token, purpose=AccessLink.Purpose.PREFERENCES)
    subject = link.request.subject if link is not None else None
    if subject is None:
        return TemplateResponse(request, "privacy/preferences_closed.html", status=403)
    request.session.cycle_key()
    request.session[PREFERENCES_SESSION_KEY] = subject.pk
    return redirect("privacy_center:preferences")


@require_http_methods(["GET", "HEAD", "POST"])
def preferences(request):
    """The person's consent preferences: each purpose with its current text and state, and
    one button to grant or withdraw it (`consent_choose`, channel "privacy center")."""
    subject = preferences_subject(request)
    if subject is None:
        return TemplateResponse(request, "privacy/preferences_closed.html", status=403)
    if request.method == "POST":
        form = ConsentChoiceForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("That choice could not be read: choose again below."))
            return redirect("privacy_center:preferences")
        data = form.cleaned_data
        granted = data["choice"] == "grant"
        try:
            event = consent_choose(
                subject=subject,
                purpose=data["purpose"],
                granted=granted,
                version=data["version"],
                ip=client_ip(request),
                user_agent=request.headers.get("User-Agent", "")[:USER_AGENT_MAX],
            )
        except ComplianceRefused:
            messages.error(
                request,
                _(
                    "The wording of this purpose changed since the page was shown, or the "
                    "purpose is no longer offered: read the current wording below and choose "
                    "again."
                ),
            )
        else:
            done = (
                _("You now consent to “%(purpose)s”.")
                if granted
                else _("You no longer consent to “%(purpose)s”.")
            )
            messages.success(request, done % {"purpose": event.purpose.name})
        return redirect("privacy_center:preferences")
    return TemplateResponse(
        request,
        "privacy/preferences.html",
        {"choices": consent_preferences(subject), "gpc": getattr(request, "gpc", False)},
    )


@require_safe
def gpc_json(request):
    """/.well-known/gpc.json: this site honours Global Privacy Control signals."""
    return JsonResponse({"gpc": True, "lastUpdate": config.gpc_last_update()})
