"""What the compliance app's own records hold about data subjects."""

from .models import SubjectRequest
from .registry import Erasure, ModelPrivacy, register

# Data-subject requests ------------------------------------------------------------------


@register(SubjectRequest)
class SubjectRequestPrivacy(ModelPrivacy):
    subject = "subject"
    fields = {}  # a link to the subject and the request's own facts; nothing personal
    erasure = Erasure.RETAIN
    legal_ground = (
        "Accountability (GDPR Art. 5(2)): the record of how the subject's request was handled."
    )
    exported = True
    retention_basis = "received_at"
    purpose = "Answering data-subject requests within their statutory deadlines."
    lawful_basis = "Legal obligation (Art. 6(1)(c))"
