"""Celery tasks of the compliance app: take ids, call one service or selector."""

import logging
import smtplib

from celery import shared_task

from .models import RequestEmail, SubjectExport
from .selectors import DUE_SOON_DAYS, requests_due
from .services import export_subject_of, exports_expire, subject_export
from .services.emails import email_deliver_now

logger = logging.getLogger(__name__)


@shared_task
def requests_due_report(days: int = DUE_SOON_DAYS) -> dict[str, list[int]]:
    """The daily reminder: log the overdue requests and those due within `days` days."""
    report = requests_due(days=days)
    if report.overdue:
        logger.warning("%d request(s) overdue: %s", len(report.overdue), _ids(report.overdue))
    if report.due_soon:
        logger.warning(
            "%d request(s) due within %d days: %s",
            len(report.due_soon),
            days,
            _ids(report.due_soon),
        )
    if not (report.overdue or report.due_soon):
        logger.info("no request overdue or due within %d days", days)
    return {"overdue": report.overdue, "due_soon": report.due_soon}


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{pk}" for pk in ids)


@shared_task
def export_run(export_id: int) -> dict:
    """Write a queued data-subject export (made by `subject_export_queue`)."""
    export = SubjectExport.objects.select_related("subject", "requested_by").get(pk=export_id)
    try:
        export = subject_export(
            subject=export_subject_of(export),
            actor=export.requested_by,
            reason=export.reason,
            export=export,
        )
    except Exception:
        # The service recorded what failed on the export, in words; the log keeps the
        # traceback and the task fails (no retry: it would fail the same way).
        logger.exception("export #%s failed", export_id)
        raise
    return {"export": export.pk, "status": export.status, "rows": export.rows}


@shared_task
def exports_expire_scheduled() -> int:
    """The daily clean-up: delete the files of expired exports."""
    return exports_expire()


@shared_task(
    bind=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=True,
    max_retries=5,
)
def email_deliver(self, email_id: int, message: dict) -> None:
    """Send an email queued by `email_send`; retried with backoff while the server fails."""
    try:
        email_deliver_now(email_id=email_id, message=message)
    except (OSError, smtplib.SMTPException) as error:
        if self.request.retries >= self.max_retries:
            RequestEmail.objects.filter(pk=email_id).update(
                status=RequestEmail.Status.FAILED, error=type(error).__name__
            )
        raise
