"""The project's error pages: a refusal says what was refused, a malformed request what was
wrong with it, a missing page where to go instead. In the admin's layout, except under the
privacy center, where a data subject sees the center's own layout in their language."""

from urllib.parse import urlsplit

from django.contrib import admin
from django.core.exceptions import BadRequest, DisallowedHost
from django.http import Http404, HttpResponseBadRequest, HttpResponseForbidden, HttpResponseNotFound
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

__all__ = ["bad_request", "page_not_found", "permission_denied"]

# What a refused admin view would have done, by the last part of its URL name.
_READ, _WRITE = "GET", "POST"
_ACTIONS = {
    ("add", _READ): "add a {name}",
    ("add", _WRITE): "add a {name}",
    ("change", _READ): "view this {name}",
    ("change", _WRITE): "change this {name}",
    ("delete", _READ): "delete this {name}",
    ("delete", _WRITE): "delete this {name}",
    ("history", _READ): "view the history of this {name}",
    ("simple_history", _READ): "view this version of the {name}",
    ("simple_history", _WRITE): "revert this {name} to an earlier version",
    ("changelist", _READ): "view the list of {names}",
    ("changelist", _WRITE): "run this action on {names}",
}


def _model_admin_view(request):
    """(model admin, view name) when the refused page is a model's admin page, else None."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    model_admin = getattr(match.func, "model_admin", None)
    if model_admin is None or "admin" not in match.namespaces:
        return None
    opts = model_admin.model._meta
    return model_admin, match.url_name.removeprefix(f"{opts.app_label}_{opts.model_name}_")


def _refused(request, model_admin, view) -> str:
    if model_admin is None:
        return "open this page"
    method = _READ if request.method in ("GET", "HEAD") else _WRITE
    template = _ACTIONS.get((view, method), "open this page")
    opts = model_admin.model._meta
    return template.format(name=opts.verbose_name, names=opts.verbose_name_plural)


def _way_back(request, model_admin, view) -> tuple[str, str]:
    """The model's list when the user may see it (and was not refused it), else the index."""
    site = admin.site
    if (
        model_admin is not None
        and view != "changelist"
        and model_admin.has_view_or_change_permission(request)
    ):
        opts = model_admin.model._meta
        url = reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_changelist")
        return url, f"Back to {opts.verbose_name_plural}"
    return reverse(f"{site.name}:index"), "Back to the administration home page"


def _in_privacy_center(request) -> bool:
    return request.path_info.startswith(reverse("privacy_center:home"))


def _privacy_error(request, response_class, title: str, explanation: str, reason: str = ""):
    """The error in the privacy center's layout: no admin link, nothing about staff."""
    context = {"title": title, "explanation": explanation, "reason": reason}
    return response_class(render_to_string("privacy/error.html", context, request))


def permission_denied(request, exception):
    """handler403: what was refused, why when the refusal says so, and the way back."""
    if _in_privacy_center(request):
        return _privacy_error(
            request,
            HttpResponseForbidden,
            _("Not allowed"),
            _("This page cannot be opened from here. Nothing was changed."),
        )
    found = _model_admin_view(request)
    model_admin, view = found if found else (None, None)
    back_url, back_label = _way_back(request, model_admin, view)
    referer = request.headers.get("referer", "")
    safe_referer = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    context = {
        **admin.site.each_context(request),
        "title": "Not allowed",
        "refused": _refused(request, model_admin, view),
        "reason": str(exception or ""),
        "back_url": back_url,
        "back_label": back_label,
        "previous_url": referer if safe_referer and urlsplit(referer).path != back_url else "",
    }
    return HttpResponseForbidden(render_to_string("403.html", context, request))


def _layout(request) -> dict:
    """The admin site's context, when the request got far enough to have a user."""
    if not hasattr(request, "user"):
        return {"site_header": admin.site.site_header, "site_title": admin.site.site_title}
    return admin.site.each_context(request)


def bad_request(request, exception):
    """handler400: the request was malformed; say what, when the refusal says so."""
    if isinstance(exception, DisallowedHost):
        # No page of the site for a host it does not serve, and no host to link back to.
        return HttpResponseBadRequest("Bad request: this host is not served here.")
    message = str(exception or "")
    reason = message if isinstance(exception, BadRequest) else ""
    if _in_privacy_center(request):
        return _privacy_error(
            request,
            HttpResponseBadRequest,
            _("Bad request"),
            _("This request holds a value that cannot be used. Nothing was changed."),
            reason,
        )
    context = {
        **_layout(request),
        "title": "Bad request",
        "reason": reason,
    }
    return HttpResponseBadRequest(render_to_string("400.html", context, request))


def page_not_found(request, exception):
    """handler404: nothing here; the reason when the view gave one, and the way home."""
    reason = ""
    if type(exception) is Http404 and exception.args and isinstance(exception.args[0], str):
        reason = exception.args[0]
    if _in_privacy_center(request):
        return _privacy_error(
            request,
            HttpResponseNotFound,
            _("Page not found"),
            _("There is no page at this address. The link may be incomplete or out of date."),
            reason,
        )
    context = {**_layout(request), "title": "Page not found", "reason": reason}
    return HttpResponseNotFound(render_to_string("404.html", context, request))
