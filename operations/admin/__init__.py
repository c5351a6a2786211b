"""Admin of the operations app: the backup catalogue, erasure replay matches, and the
schedules (django-celery-beat) on the project's site."""

from .backups import BackupAdmin, BackupOnDiskFilter
from .replay import ErasureReplayMatchAdmin
from .schedules import CrontabScheduleAdmin, PeriodicTaskAdmin

__all__ = [
    "BackupAdmin",
    "BackupOnDiskFilter",
    "CrontabScheduleAdmin",
    "ErasureReplayMatchAdmin",
    "PeriodicTaskAdmin",
]
