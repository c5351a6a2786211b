"""Helpers the compliance admin pages share: the request a page answers, its default
reason, the steps of a request and the local date formats."""

from django.utils import timezone
from django.utils.formats import date_format

from versions.models import LedgerAction

from ..models import SubjectRequest
from ..selectors import request_find
from ..services import ComplianceRefused


def _answered_request(http_request) -> SubjectRequest | None:
    """The request a page opened from a request's page answers (``?request=<id>``, then a
    hidden field of its form), or None when none is named. A named request that is
    malformed or unknown is refused (ComplianceRefused): never run without the link."""
    named = http_request.POST.get("request") or http_request.GET.get("request", "")
    if not named:
        return None
    found = request_find(named) if named.isascii() else None
    if found is None:
        raise ComplianceRefused(
            f"No data-subject request {named[:20]!r}: open the export or erasure from the "
            "request's own page. Nothing was run."
        )
    return found


def _request_reason(answered: SubjectRequest | None) -> str:
    """The default reason of a page that answers a request."""
    return f"Request #{answered.pk}" if answered is not None else ""


_STEP_NAMES = {
    "create": "Received",
    "verify": "Identity verified",
    "start": "Started",
    "complete": "Completed",
    "reject": "Rejected",
    "extend": "Extended",
    "release": "Copy released to the requester",
    "message": "Message sent to the requester",
}

_OUTCOMES = dict(SubjectRequest.Outcome.choices)


def _step_label(entry) -> str:
    """One ledger entry about a request, as a step: "Identity verified", "Export #3 done"."""
    details = entry.details
    if entry.action == LedgerAction.REQUEST:
        label = _STEP_NAMES.get(details.get("transition"), details.get("transition", ""))
        if details.get("outcome") in _OUTCOMES:
            label += f" (export #{details.get('export')}: {_OUTCOMES[details['outcome']].lower()})"
        elif details.get("transition") == "release":
            label += f" (export #{details.get('export')})"
        elif "export" in details:
            label += f" (export #{details['export']} ready: awaiting delivery)"
        if "certificate" in details:
            label += f" (erasure certificate #{details['certificate']})"
        return label
    if entry.action == LedgerAction.EXPORT:
        return f"Export #{details.get('export')} written"
    if entry.action == LedgerAction.EXPORT_DOWNLOAD:
        by = " by the requester" if details.get("by") == "subject" else ""
        return f"Export #{details.get('export')} downloaded{by}"
    return "Erasure committed"


def _local(moment, pattern="j M Y, H:i") -> str:
    """A date and time in the local time zone (3 Oct 2024, 14:05 by default); "—" for none.
    The one formatter of this module's lists and messages."""
    return date_format(timezone.localtime(moment), pattern) if moment else "—"


def _when(moment) -> str:
    return _local(moment, "Y-m-d H:i")
