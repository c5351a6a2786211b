"""The privacy center's pages: thin views over the compliance services.

Nothing personal travels in a URL: the request waiting for its code is kept in the session,
and a request is followed through a link whose path holds only a random token.
"""

from django.contrib import messages
from django.http import FileResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from versions.middleware import USER_AGENT_MAX, client_ip

from .. import config
from ..models import AccessLink, SubjectRequest
from ..selectors import consent_preferences, request_copy_released
from ..services import ComplianceRefused, consent_choose
from ..services.center import (
    center_code_resend,
    center_rate_limited,
    center_request_start,
    center_request_verify,
)
from ..services.delivery import (
    DeliveryRefused,
    delivery_code_send,
    delivery_download,
    delivery_export,
    delivery_link,
)
from ..services.links import access_link_resolve
from ..services.verification import MAX_TRIES
from .forms import CodeForm, ConsentChoiceForm, StartForm
from .middleware import PREFERENCES_SESSION_KEY, preferences_subject

PENDING = "privacy_pending_request"


def _ip(request) -> str:
    return client_ip(request) or ""


def _too_many(request):
    return TemplateResponse(request, "privacy/too_many.html", status=429)


@require_safe
def home(request):
    """What a person can do here: start a request or set their consent preferences."""
    return TemplateResponse(request, "privacy/home.html")


@require_http_methods(["GET", "HEAD", "POST"])
def start(request):
    """Start a request: the answer is the same page whether or not we know the email."""
    form = StartForm(request.POST or None)
    if request.method != "POST" or not form.is_valid():
        return TemplateResponse(request, "privacy/start.html", {"form": form})
    data = form.cleaned_data
    if center_rate_limited(action="start", ip=_ip(request), email=data["email"]):
        return _too_many(request)
    if not data["website"]:  # a filled honeypot gets the same page and nothing else
        pending = center_request_start(
            email=data["email"],
            kind=data["kind"],
            jurisdiction=data["jurisdiction"],
            details=data["details"],
            language=get_language(),
            pending=_pending(request),
        )
        request.session[PENDING] = pending.pk
    # Post, then redirect: a reload or Back shows the code page, it does not post again.
    return redirect("privacy_center:verify")


def _pending(request):
    pk = request.session.get(PENDING)
    if not isinstance(pk, int):
        return None
    return SubjectRequest.objects.filter(pk=pk, state=SubjectRequest.State.RECEIVED).first()


@require_http_methods(["GET", "HEAD", "POST"])
def verify(request):
    """The code page (the same for everyone who started a request); on POST, check the
    emailed code of the request started in this browser."""
    if request.method != "POST":
        return TemplateResponse(request, "privacy/verify.html", {"form": CodeForm()})
    pending = _pending(request)
    if pending is None:
        return TemplateResponse(request, "privacy/verify_lost.html", status=400)
    form = CodeForm(request.POST)
    if center_rate_limited(action="verify", ip=_ip(request), email=pending.contact_email):
        return _too_many(request)
    if not form.is_valid():
        return TemplateResponse(request, "privacy/verify.html", {"form": form}, status=400)
    outcome = center_request_verify(
        request=pending,
        code=form.cleaned_data["code"],
        ip=_ip(request) or None,
        status_url=lambda token: request.build_absolute_uri(
            reverse("privacy_center:status", args=[token])
        ),
        language=get_language(),
    )
    if not outcome.result.ok:
        message = {
            "wrong": ngettext(
                "That code is not right. You have %(left)d more try.",
                "That code is not right. You have %(left)d more tries.",
                outcome.result.tries_left,
            )
            % {"left": outcome.result.tries_left},
            "expired": _("That code has expired. Ask for a new one."),
            "used": _("That code was used already. Ask for a new one."),
            "locked": _("Too many wrong codes (%(max)d). Ask for a new one.") % {"max": MAX_TRIES},
        }.get(outcome.result.reason, _("Ask for a new code."))
        form.add_error("code", message)
        return TemplateResponse(request, "privacy/verify.html", {"form": form}, status=400)
    del request.session[PENDING]
    return HttpResponseRedirect(reverse("privacy_center:status", args=[outcome.status_token]))


@require_POST
def resend(request):
    """Email a new code for the request started in this browser."""
    pending = _pending(request)
    if pending is None:
        return TemplateResponse(request, "privacy/verify_lost.html", status=400)
    if center_rate_limited(action="resend", ip=_ip(request), email=pending.contact_email):
        return _too_many(request)
    sent = center_code_resend(request=pending, language=get_language())
    notice = (
        _("We sent a new code. The previous one no longer works.")
        if sent
        else _("We sent a code less than a minute ago. Wait a moment before asking again.")
    )
    return TemplateResponse(request, "privacy/verify.html", {"form": CodeForm(), "notice": notice})


@require_safe
def status(request, token: str):
    """Follow a request through the link we gave: its state, due date and outcome."""
    link = access_link_resolve(token=token, purpose=AccessLink.Purpose.STATUS)
    if link is None:
        return TemplateResponse(request, "privacy/link_invalid.html", status=404)
    context = {"req": link.request, "copy_released": request_copy_released(link.request)}
    response = TemplateResponse(request, "privacy/status.html", context)
    response.headers["Referrer-Policy"] = "no-referrer"  # the token must not leak onwards
    response.headers["Cache-Control"] = "no-store"
    return response


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


@require_http_methods(["GET", "HEAD", "POST"])
def download(request, token):
    """The download page of a released copy, reached from the "copy ready" email: a GET shows
    what it is; "send" emails a fresh code; "download" checks it and streams the ZIP."""
    link = delivery_link(token)
    if link is None:  # unknown, expired or revoked: the same answer for each
        return TemplateResponse(request, "privacy/link_invalid.html", status=404)
    export = delivery_export(link)
    context = {"export": export, "code_sent": False, "error": ""}
    status = 200
    if request.method == "POST" and export is not None:
        action = "download-send" if request.POST.get("action") == "send" else "download"
        if center_rate_limited(action=action, ip=_ip(request), email=link.request.contact_email):
            return _too_many(request)
        if action == "download-send":
            context["code_sent"] = True
            sent = delivery_code_send(link=link, language=get_language())
            context["resend_wait"] = not sent
        else:
            try:
                export, handle = delivery_download(link=link, code=request.POST.get("code", ""))
            except DeliveryRefused as exc:
                context.update(code_sent=True, error=str(exc))
                status = 400
            else:
                return FileResponse(
                    handle,
                    as_attachment=True,
                    filename=f"personal-data-{timezone.localdate():%Y-%m-%d}.zip",
                    content_type="application/zip",
                )
    response = TemplateResponse(request, "privacy/download.html", context, status=status)
    # Not "no-referrer": its forms post back here, and a browser then sends "Origin: null",
    # which the CSRF check refuses. "same-origin" still keeps the token from other sites.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response
