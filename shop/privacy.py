"""What the sample shop holds about its customers, and what happens to it."""

from compliance.registry import Category, Erasure, ModelPrivacy, Personal, register

from .models import (
    AnalyticsEvent,
    Customer,
    Document,
    Message,
    Notification,
    NotificationPreference,
    Order,
    PasswordResetToken,
    Session,
)


@register(Customer)
class CustomerPrivacy(ModelPrivacy):
    subject = "pk"
    fields = {
        "email": Personal(Category.CONTACT, anonymiser="email_placeholder"),
        "name": Personal(Category.IDENTITY, anonymiser="redact"),
        "phone": Personal(Category.CONTACT, anonymiser="blank"),
        "avatar_url": Personal(Category.IMAGE, anonymiser="blank"),
        "date_of_birth": Personal(Category.IDENTITY, anonymiser="null"),
    }
    # The customer row stays (orders point at it); its personal fields are anonymised.
    erasure = Erasure.ANONYMISE
    retention_basis = "created_at"
    purpose = "Customer account: sign-in, orders, support."
    lawful_basis = "Contract (Art. 6(1)(b))"


@register(Session)
class SessionPrivacy(ModelPrivacy):
    subject = "customer"
    fields = {
        "token": Personal(Category.CREDENTIAL, anonymiser="hash", exported=False),
        "ip_address": Personal(Category.ONLINE_ID, anonymiser="null"),
        "user_agent": Personal(Category.ONLINE_ID, anonymiser="redact"),
    }
    erasure = Erasure.DELETE
    retention_basis = "created_at"
    purpose = "Keeping customers signed in; detecting account takeover."
    lawful_basis = "Legitimate interests (Art. 6(1)(f))"


@register(Order)
class OrderPrivacy(ModelPrivacy):
    subject = "customer"
    fields = {
        "shipping_name": Personal(Category.IDENTITY, anonymiser="redact"),
        "shipping_address": Personal(Category.LOCATION, anonymiser="redact"),
        "shipping_postcode": Personal(Category.LOCATION, anonymiser="redact"),
        "shipping_city": Personal(Category.LOCATION, anonymiser="redact"),
    }
    erasure = Erasure.RETAIN
    legal_ground = "Commercial and tax law: orders are accounting records kept 10 years."
    retention_basis = "created_at"
    purpose = "Fulfilling, invoicing and accounting for orders."
    lawful_basis = "Contract (Art. 6(1)(b)); legal obligation (Art. 6(1)(c))"


@register(Message)
class MessagePrivacy(ModelPrivacy):
    subject = ["sender", "recipient"]
    fields = {
        "sender_name": Personal(Category.IDENTITY, anonymiser="redact"),
        "body": Personal(Category.CONTENT, anonymiser="redact"),
    }
    # Conversations stay readable for the other party; the subject's words do not.
    erasure = Erasure.ANONYMISE
    retention_basis = "created_at"
    purpose = "Messages between customers."
    lawful_basis = "Contract (Art. 6(1)(b))"


@register(Notification)
class NotificationPrivacy(ModelPrivacy):
    subject = "customer"
    fields = {
        "title": Personal(Category.CONTENT, anonymiser="redact"),
        "body": Personal(Category.CONTENT, anonymiser="redact"),
    }
    erasure = Erasure.DELETE
    retention_basis = "read_at"
    purpose = "Telling customers about orders, messages and security events."
    lawful_basis = "Contract (Art. 6(1)(b))"


@register(NotificationPreference)
class NotificationPreferencePrivacy(ModelPrivacy):
    subject = "customer"
    fields = {}
    erasure = Erasure.DELETE
    retention_basis = "updated_at"
    purpose = "Honouring each customer's choice of notification channels."
    lawful_basis = "Contract (Art. 6(1)(b))"


@register(AnalyticsEvent)
class AnalyticsEventPrivacy(ModelPrivacy):
    subject = "customer"
    fields = {
        "properties": Personal(Category.BEHAVIOUR, anonymiser="empty_json"),
        "ip_address": Personal(Category.ONLINE_ID, anonymiser="null"),
    }
    not_personal = ("name",)  # the event's name, e.g. "page_view"
    erasure = Erasure.DELETE
    retention_basis = "occurred_at"
    purpose = "Measuring how the shop is used."
    lawful_basis = "Consent (Art. 6(1)(a))"


@register(Document)
class DocumentPrivacy(ModelPrivacy):
    subject = "owner"
    fields = {
        "title": Personal(Category.CONTENT, anonymiser="redact"),
        "content": Personal(Category.CONTENT, anonymiser="redact"),
    }
    erasure = Erasure.DELETE
    retention_basis = "updated_at"
    purpose = "Documents customers upload (invoices, returns, correspondence)."
    lawful_basis = "Contract (Art. 6(1)(b))"


@register(PasswordResetToken)
class PasswordResetTokenPrivacy(ModelPrivacy):
    subject = "customer"
    fields = {
        "token_hash": Personal(Category.CREDENTIAL, anonymiser="hash", exported=False),
    }
    erasure = Erasure.DELETE
    retention_basis = "created_at"
    purpose = "Letting customers reset a forgotten password."
    lawful_basis = "Contract (Art. 6(1)(b))"
