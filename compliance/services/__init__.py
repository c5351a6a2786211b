"""Compliance services: every state change of the compliance app, one module per concept.

Each is keyword-only, takes the acting user (`actor`, None for the system) and a `reason`,
checks the actor's permission, and runs in one transaction with its history rows and its
ledger entry. `requests` (states, clocks), `exports`, `consents` and `erasure`; the names
below stay importable from `compliance.services`.
"""

from .common import ComplianceRefused
from .consents import GPC, PRIVACY_CENTER, consent_choose, consent_record, gpc_honour
from .erasure import ERASE_PERMISSION, NOTHING_LEFT, ErasureResult, subject_erase
from .exports import (
    DOWNLOAD_PERMISSION,
    EXPORT_FORMAT,
    export_download,
    export_may_download,
    export_path,
    export_subject_of,
    exports_expire,
    subject_export,
    subject_export_queue,
    subject_exports_remove,
)
from .requests import (
    ANSWERABLE,
    request_complete,
    request_create,
    request_extend,
    request_reject,
    request_start,
    request_verify,
)

__all__ = [
    "ANSWERABLE",
    "DOWNLOAD_PERMISSION",
    "ERASE_PERMISSION",
    "EXPORT_FORMAT",
    "NOTHING_LEFT",
    "GPC",
    "PRIVACY_CENTER",
    "ComplianceRefused",
    "ErasureResult",
    "consent_choose",
    "consent_record",
    "export_download",
    "export_may_download",
    "export_path",
    "export_subject_of",
    "exports_expire",
    "gpc_honour",
    "request_complete",
    "request_create",
    "request_extend",
    "request_reject",
    "request_start",
    "request_verify",
    "subject_erase",
    "subject_export",
    "subject_export_queue",
    "subject_exports_remove",
]
