"""Admin of the compliance app's models, one module per concept: requests, exports,
consents and erasure (certificates and the erasure page). The registry's rules on every
admin are in registry_admin.py; the inventory and subject pages are on the admin site,
sites.py. Importing this package registers every admin."""

from .consents import ConsentEventAdmin, ConsentPurposeAdmin, ConsentStateAdmin, ConsentTextAdmin
from .erasure import ErasureCertificateAdmin
from .exports import SubjectExportAdmin
from .requests import REQUEST_TRANSITIONS, DeadlineFilter, RequestTransition, SubjectRequestAdmin

__all__ = [
    "REQUEST_TRANSITIONS",
    "ErasureCertificateAdmin",
    "ConsentEventAdmin",
    "ConsentPurposeAdmin",
    "ConsentStateAdmin",
    "ConsentTextAdmin",
    "DeadlineFilter",
    "RequestTransition",
    "SubjectExportAdmin",
    "SubjectRequestAdmin",
]
