"""What the compliance app's own records hold about data subjects: requests and consents."""

from .models import (
    AccessLink,
    ConsentEvent,
    ConsentPurpose,
    ConsentState,
    RequestMessage,
    SubjectRequest,
)
from .registry import Category, Erasure, ModelPrivacy, Personal, register, registry

# Data-subject requests ------------------------------------------------------------------


@register(SubjectRequest)
class SubjectRequestPrivacy(ModelPrivacy):
    subject = "subject"
    subject_key_field = "subject_key"  # the link goes with the subject row; the key stays
    # Beyond the link to the subject, the address a requester gave in the privacy center
    # and what they asked to correct.
    fields = {
        "contact_email": Personal(Category.CONTACT, anonymiser="email_placeholder"),
        "details": Personal(Category.CONTENT, anonymiser="redact"),
        "verified_ip": Personal(Category.ONLINE_ID, anonymiser="null"),
    }
    erasure = Erasure.RETAIN
    legal_ground = (
        "Accountability (GDPR Art. 5(2)): the record of how the subject's request was handled."
    )
    exported = True
    retention_basis = "received_at"
    purpose = "Answering data-subject requests within their statutory deadlines."
    lawful_basis = "Legal obligation (Art. 6(1)(c))"
    # Handling the subject's requests (a restriction request among them) is what Art. 12
    # requires of a restricted subject's records too.
    restriction_applies = False


@register(RequestMessage)
class RequestMessagePrivacy(ModelPrivacy):
    subject = "request__subject"
    # What an officer wrote to the person may name them or their data.
    fields = {"body": Personal(Category.CONTENT, anonymiser="redact")}
    erasure = Erasure.ANONYMISE
    exported = True
    retention_basis = "created_at"
    purpose = "Answering data-subject requests within their statutory deadlines."
    lawful_basis = "Legal obligation (Art. 6(1)(c))"
    restriction_applies = False  # part of answering the subject's own request


# Consents ------------------------------------------------------------------------------
# A purpose's name ("Marketing emails") names a processing activity, not a person.
registry.declare_not_personal(ConsentPurpose, "name")

EVIDENCE = (
    "Consent must be demonstrable (GDPR Art. 7(1)) and the evidence is needed to defend "
    "legal claims (Art. 17(3)(e)): the events are kept, their IP address and user agent "
    "anonymised, until a retention policy on consent events removes those of subjects whose "
    "row is gone."
)


@register(ConsentEvent)
class ConsentEventPrivacy(ModelPrivacy):
    subject = "subject"
    fields = {
        "ip_address": Personal(Category.ONLINE_ID, anonymiser="null"),
        "user_agent": Personal(Category.ONLINE_ID, anonymiser="redact"),
    }
    # Rows stay (which purpose, which text, granted or withdrawn, when, where); the two
    # fields that identify the device go. ConsentEventQuerySet.update allows exactly this.
    erasure = Erasure.ANONYMISE
    legal_ground = EVIDENCE
    retention_basis = "occurred_at"
    # The events outlive their subject's row (found by its key, subject_id): a policy on
    # them removes only the events of subjects whose row is gone.
    outlives_subject = True
    purpose = "Demonstrating each grant and withdrawal of consent."
    lawful_basis = "Legal obligation (Art. 6(1)(c), Art. 7(1))"
    # A withdrawal is always recorded (Art. 7(3)), and a grant is the subject's own consent,
    # under which Art. 18(2) allows processing.
    restriction_applies = False


@register(ConsentState)
class ConsentStatePrivacy(ModelPrivacy):
    subject = "subject"
    fields = {}
    erasure = Erasure.RETAIN
    legal_ground = (
        "The subject's current consent choices (no personal fields): kept with the events "
        "as evidence (GDPR Art. 7(1), Art. 17(3)(e))."
    )
    retention_basis = "updated_at"
    purpose = "Honouring each subject's current consent choices."
    lawful_basis = "Legal obligation (Art. 6(1)(c), Art. 7(1))"
    restriction_applies = False  # follows the events (see ConsentEventPrivacy)


# The privacy center's codes, links and email records --------------------------------------
# Hashes of random values handed to the requester, never derived from what they are.
registry.declare_not_personal(AccessLink, "token_hash")
