"""The daily due report through a real Celery worker process on Redis."""

import time
from datetime import timedelta

import pytest
from celery.backends.redis import RedisBackend
from django.utils import timezone

from compliance.models import Jurisdiction, SubjectRequest
from compliance.services import request_create
from compliance.tasks import requests_due_report
from project.celery import app
from tests.retention.test_workers import redis_url, workers  # noqa: F401 (fixtures)


@pytest.fixture
def result_backend(redis_url, monkeypatch):  # noqa: F811
    """Workers started after this store their results in Redis, where the test reads them."""
    monkeypatch.setenv("CELERY_RESULT_BACKEND", redis_url)
    return RedisBackend(app=app, url=redis_url)


@pytest.mark.worker
def test_worker_runs_the_due_report_and_returns_the_ids(result_backend, workers, customer):  # noqa: F811
    """A worker process reads the requests from the database and returns overdue/due-soon ids."""
    now = timezone.now()

    def create(days_ago, jurisdiction=Jurisdiction.GDPR):
        return request_create(
            subject=customer,
            kind=SubjectRequest.Kind.ACCESS,
            jurisdiction=jurisdiction,
            received_at=now - timedelta(days=days_ago),
            actor=None,
        )

    overdue, soon, _later = create(40), create(42, Jurisdiction.CCPA), create(1)
    sent = requests_due_report.apply_async(queue=workers)
    deadline = time.monotonic() + 60
    while (meta := result_backend.get_task_meta(sent.id))["status"] != "SUCCESS":
        assert meta["status"] in {"PENDING", "STARTED", "RECEIVED"}, meta
        assert time.monotonic() < deadline, "the worker did not report within 60 s"
        time.sleep(0.2)
    assert meta["result"] == {"overdue": [overdue.pk], "due_soon": [soon.pk]}
