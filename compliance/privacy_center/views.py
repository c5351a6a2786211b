"""The privacy center's pages: thin views over the compliance services."""

from django.http import FileResponse
from django.template.response import TemplateResponse
from django.utils import timezone, translation
from django.views.decorators.http import require_http_methods, require_safe

from ..services.delivery import (
    DeliveryRefused,
    delivery_code_send,
    delivery_download,
    delivery_export,
    delivery_link,
)


@require_safe
def home(request):
    """What a person can do here: start a request or set their consent preferences."""
    return TemplateResponse(request, "privacy/home.html")


@require_http_methods(["GET", "HEAD", "POST"])
def download(request, token):
    """The download page of a released copy, reached from the "copy ready" email: a GET shows
    what it is; "send" emails a fresh code; "download" checks it and streams the ZIP."""
    link = delivery_link(token)
    if link is None:
        return _gone(request)
    export = delivery_export(link)
    context = {"export": export, "code_sent": False, "error": ""}
    status = 200
    if request.method == "POST" and export is not None:
        if request.POST.get("action") == "send":
            context["code_sent"] = True
            sent = delivery_code_send(link=link, language=translation.get_language())
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
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token is in the path
    return response


def _gone(request):
    """A download link that is unknown, expired or revoked: the same answer for each."""
    return TemplateResponse(request, "privacy/download_gone.html", status=404)
