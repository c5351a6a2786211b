"""Celery tasks of the compliance app: take ids, call one service."""

import logging

from celery import shared_task

from .models import SubjectExport
from .services import exports_expire, subject_export

logger = logging.getLogger(__name__)


@shared_task
def export_run(export_id: int) -> dict:
    """Write a queued data-subject export (made by `subject_export_queue`)."""
    export = SubjectExport.objects.select_related("subject", "requested_by").get(pk=export_id)
    try:
        export = subject_export(
            subject=export.subject, actor=export.requested_by, reason=export.reason, export=export
        )
    except Exception as exc:
        # The service recorded the failure on the export; a retry would fail the same way.
        logger.error("export #%s failed: %s", export_id, exc)
        return {"export": export_id, "status": SubjectExport.Status.FAILED}
    return {"export": export.pk, "status": export.status, "rows": export.rows}


@shared_task
def exports_expire_scheduled() -> int:
    """The daily clean-up: delete the files of expired exports."""
    return exports_expire()
