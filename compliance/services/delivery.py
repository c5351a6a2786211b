"""Delivery of the copy: an officer releases a finished export to the person, who downloads it
from the privacy center after proving their email again.

- `export_release` (officer, permission ``release_subjectexport``): the export must be done,
  answer an open access request that has a contact address, and not be released yet (a
  second release changes nothing and says who released it when). It creates an access link
  (purpose "download", valid COMPLIANCE_DOWNLOAD_LINK_DAYS), sets the copy to expire with
  the link, writes the request's "release" step in the ledger and emails the link ("copy
  ready") once the transaction commits; all in one transaction.
- `delivery_code_send` and `delivery_download` (the person, from the link): a fresh emailed
  code (the challenge mechanism, purpose "download") is required before each download;
  `export_download` then counts it, writes its ledger entry, and the first one completes the
  request as "downloaded". `exports_expire` completes it as "expired without download" when
  the link runs out unused.

The token is never stored (its hash is), and the file leaves only through this page and the
officers' own download.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from versions.context import change_context

from .. import config
from ..models import AccessLink, Challenge, SubjectExport, SubjectRequest
from ..selectors import request_release_export
from .common import ComplianceRefused, require_perm
from .emails import email_send
from .exports import export_download, export_path
from .links import access_link_create, access_link_resolve
from .requests import State, request_ledger
from .verification import ChallengeResult, challenge_check, challenge_issue

__all__ = [
    "RELEASE_PERMISSION",
    "Release",
    "delivery_code_send",
    "delivery_download",
    "delivery_export",
    "delivery_link",
    "export_release",
    "request_release",
]

RELEASE_PERMISSION = "compliance.release_subjectexport"


@dataclass(frozen=True)
class Release:
    """What `export_release` did: `released` False when the export had been released
    already (nothing was sent again); `message` says which, for the officer."""

    export: SubjectExport
    released: bool
    message: str


def _local(moment) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def export_release(
    *, export: SubjectExport, actor, absolute_url: Callable[[str], str], reason: str = ""
) -> Release:
    """Release a finished export to the person its request came from: email them a link to
    the download page (`absolute_url` makes the full address from a path). A second release
    of the same export is a no-op with a message."""
    require_perm(actor, RELEASE_PERMISSION, "release copies to data subjects")
    with change_context(user=actor, reason=reason), transaction.atomic():
        locked = SubjectExport.objects.select_for_update().get(pk=export.pk)
        if locked.released_at is not None:
            by = locked.released_by or "the system"
            return Release(
                locked,
                False,
                f"Export #{locked.pk} was already released on {_local(locked.released_at)} "
                f"by {by}: nothing was sent again.",
            )
        request = (
            SubjectRequest.objects.select_for_update().filter(pk=locked.request_id).first()
            if locked.request_id is not None
            else None
        )
        _release_refusal(locked, request)
        now = timezone.now()
        expires_at = now + timedelta(days=config.download_link_days())
        link, token = access_link_create(
            request=request, purpose=AccessLink.Purpose.DOWNLOAD, expires_at=expires_at
        )
        locked.released_at, locked.released_by = now, actor
        locked.expires_at = expires_at  # the copy lives exactly as long as its link
        locked.save(update_fields=["released_at", "released_by", "expires_at"])
        request_ledger(
            request,
            transition="release",
            previous=request.state,
            actor=actor,
            reason=reason or f"Export #{locked.pk} released",
            export=locked.pk,
            link=link.pk,
            link_expires_at=expires_at.isoformat(),
        )
        email_send(
            request=request,
            kind="copy_ready",
            context={
                "download_url": absolute_url(reverse("privacy_center:download", args=[token])),
                "expires_at": expires_at,
            },
            language=request.language or "en",
        )
    return Release(
        locked,
        True,
        f"Export #{locked.pk} released: the requester was emailed a link to download it, "
        f"valid until {_local(expires_at)}.",
    )


def request_release(
    *, request: SubjectRequest, actor, absolute_url: Callable[[str], str], reason: str = ""
) -> Release:
    """Release the latest finished export of `request` (`export_release`)."""
    export = request_release_export(request)
    if export is None:
        raise ComplianceRefused(
            f"{request} has no finished export to release: run the export from its page first."
        )
    return export_release(export=export, actor=actor, absolute_url=absolute_url, reason=reason)


def _release_refusal(export: SubjectExport, request: SubjectRequest | None) -> None:
    """ComplianceRefused, saying what to do, unless `export` may be released to `request`."""
    if export.status != SubjectExport.Status.DONE or export_path(export) is None:
        raise ComplianceRefused(
            f"Export #{export.pk} is {export.get_status_display().lower()}: only a finished "
            "export stored here can be released. Run the export again if it failed or expired."
        )
    if export.expires_at is not None and export.expires_at <= timezone.now():
        raise ComplianceRefused(
            f"Export #{export.pk} has expired: run a new export from the request's page."
        )
    if request is None or request.kind != SubjectRequest.Kind.ACCESS:
        raise ComplianceRefused(
            f"Export #{export.pk} answers no access request: only the answer to a person's "
            "access request is released to them."
        )
    if request.state != State.IN_PROGRESS:
        raise ComplianceRefused(
            f"{request} is {request.get_state_display().lower()}: only an open request in "
            "progress can receive its copy."
        )
    if not request.contact_email:
        raise ComplianceRefused(
            f"{request} has no contact address (it was recorded by an officer): download "
            "the export and deliver it to the person yourself."
        )


def delivery_link(token: str) -> AccessLink | None:
    """The live download link with this token, else None (unknown, expired or revoked)."""
    return access_link_resolve(token=token, purpose=AccessLink.Purpose.DOWNLOAD)


def delivery_export(link: AccessLink) -> SubjectExport | None:
    """The copy released through `link`: the latest released export of its request."""
    return (
        SubjectExport.objects.filter(request_id=link.request_id, released_at__isnull=False)
        .order_by("-released_at", "-pk")
        .first()
    )


def delivery_code_send(*, link: AccessLink, language: str | None = None) -> bool:
    """Email a fresh code to the requester before a download; False when one was sent
    less than a minute ago (that one still works)."""
    with transaction.atomic():
        _challenge, code = challenge_issue(request=link.request, purpose=Challenge.Purpose.DOWNLOAD)
        if code is None:
            return False
        email_send(
            request=link.request,
            kind="code",
            context={"code": code, "minutes": config.code_minutes(), "download": True},
            language=language,
        )
    return True


class DeliveryRefused(ComplianceRefused):
    """The person's download was refused; `result` is the code check's when it failed."""

    def __init__(self, message: str, result: ChallengeResult | None = None):
        super().__init__(message)
        self.result = result


def delivery_download(*, link: AccessLink, code: str):
    """Check the emailed `code` (constant time, once) and open the released copy for the
    person: counted, a ledger entry, the first completes the request. Returns (export,
    open file); DeliveryRefused says why not."""
    export = delivery_export(link)
    if export is None:
        raise DeliveryRefused(_("Your copy has not been released yet."))
    result = challenge_check(request=link.request, code=code, purpose=Challenge.Purpose.DOWNLOAD)
    if not result.ok:
        raise DeliveryRefused(
            str(_CODE_REFUSALS.get(result.reason, _CODE_REFUSALS["wrong"])), result
        )
    try:
        handle = export_download(
            export=export, actor=None, reason="Downloaded by the requester", link=link
        )
    except ComplianceRefused:
        raise DeliveryRefused(
            _("Your copy is no longer available. Please contact us to receive a new one.")
        ) from None
    return export, handle


_CODE_REFUSALS = {
    "wrong": gettext_lazy("This code is not right. Check the latest email and try again."),
    "expired": gettext_lazy("This code has expired. Ask for a new one."),
    "used": gettext_lazy("This code was used already. Ask for a new one."),
    "locked": gettext_lazy("Too many wrong codes. Ask for a new one."),
    "none": gettext_lazy("Ask for a code first."),
}
