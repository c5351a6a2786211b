"""Celery tasks of the retention app: a failed purge fails its task."""

from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from retention.models import PurgeRun, RetentionPolicy
from retention.services import PurgeFailed
from retention.tasks import purge_policy
from shop.models import Session


def test_a_failed_purge_marks_its_task_failed(customer, settings, tmp_path):
    """The task ends in FAILURE with the run log's words and the original error behind it."""
    when = timezone.now() - timedelta(days=200)
    Session.objects.create(customer=customer, created_at=when, expires_at=when)
    settings.RETENTION_ARCHIVE_DIR = tmp_path / "not-a-directory"
    settings.RETENTION_ARCHIVE_DIR.write_text("")
    policy = RetentionPolicy.objects.create(
        name="sessions",
        target=ContentType.objects.get_for_model(Session),
        period_days=90,
        archive=True,
    )
    result = purge_policy.apply((policy.pk,), throw=False)
    assert result.state == "FAILURE" and isinstance(result.result, PurgeFailed)
    assert isinstance(result.result.__cause__, OSError)
    assert PurgeRun.objects.get().error in str(result.result)
