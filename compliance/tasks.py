"""Celery tasks of the compliance app: take ids, call one service or selector."""

import logging

from celery import shared_task

from .selectors import DUE_SOON_DAYS, requests_due

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
