"""Demo data: realistic, deterministic customers with rows in every table and history.

Same seed, same day: same data. Dates spread over the three years before today; every
address, phone number and IP comes from ranges reserved for documentation or fiction (the
phone numbers from Ofcom's drama ranges, which `phonenumbers` accepts as valid).
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from compliance.models import (
    ConsentEvent,
    ConsentPurpose,
    ConsentText,
    Jurisdiction,
    SubjectRequest,
)
from compliance.roles import AUDITOR, OFFICER
from compliance.services import (
    consent_record,
    request_complete,
    request_create,
    request_extend,
    request_reject,
    request_start,
    request_verify,
)
from retention.models import LegalHold, PolicyAction, RetentionPolicy
from retention.services import hold_place, policy_save, rows_soft_delete
from versions.context import change_context
from versions.history import bulk_create_with_context, bulk_update_with_context
from versions.ledger import ledger_append
from versions.models import LedgerAction

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

__all__ = [
    "DEMO_LOGINS",
    "DemoLogin",
    "DemoRefused",
    "DemoSeedResult",
    "demo_seed",
    "demo_users_ensure",
]

DEMO_EMAIL_DOMAIN = "example.com"
SPAN = timedelta(days=3 * 365)

FIRST = [
    "Alice",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Mia",
    "Noah",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Ugo",
    "Vera",
    "Wim",
    "Xenia",
    "Yusuf",
    "Zoë",
    "Amir",
    "Björn",
    "Carla",
    "Dmitri",
]
LAST = [
    "Anders",
    "Brennan",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Horvat",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "O'Brien",
    "Petrov",
    "Quist",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Yilmaz",
    "Zimmermann",
]
STREETS = (
    "Elm Street",
    "Harbour Road",
    "Lindenallee",
    "Rue des Fleurs",
    "Via Roma",
    "Kingsway",
    "Marktplatz",
    "Calle Mayor",
    "Nørregade",
    "Station Road",
)
CITIES = (
    ("Berlin", "DE"),
    ("Paris", "FR"),
    ("Madrid", "ES"),
    ("Rome", "IT"),
    ("Dublin", "IE"),
    ("Vienna", "AT"),
    ("Copenhagen", "DK"),
    ("Amsterdam", "NL"),
)
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile",
    "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/130.0 Mobile",
)
EVENTS = ("page_view", "product_view", "add_to_cart", "checkout_started", "search", "login")
DOCUMENTS = ("Invoice copy", "Return form", "Warranty claim", "ID verification", "Complaint")


class DemoRefused(Exception):
    """Demo data and published logins are refused outside DEMO mode."""


def _require_demo() -> None:
    if not settings.DEMO:
        raise DemoRefused(
            "Demo data and its logins with published passwords are created only with "
            "DEMO=true. Set DEMO=true for a demo database; never on a production one."
        )


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str


DEMO_LOGINS = (
    DemoLogin("admin", "demo-admin-pass", "Administrator"),
    DemoLogin("officer", "demo-officer-pass", OFFICER),
    DemoLogin("auditor", "demo-auditor-pass", AUDITOR),
)


@dataclass
class DemoSeedResult:
    created: bool
    counts: dict[str, int] = field(default_factory=dict)


def demo_users_ensure() -> list[DemoLogin]:
    """Create (or reset) the demo logins: an admin, a privacy officer and an auditor."""
    _require_demo()
    User = get_user_model()
    for login in DEMO_LOGINS:
        user, _ = User.objects.get_or_create(username=login.username)
        user.is_staff = True
        user.is_superuser = login.role == "Administrator"
        user.email = f"{login.username}@{DEMO_EMAIL_DOMAIN}"
        user.set_password(login.password)
        user.save()
        if not user.is_superuser:
            user.groups.set([Group.objects.get(name=login.role)])
    return list(DEMO_LOGINS)


def _ascii(text: str) -> str:
    """Björn -> bjorn: the admin's email validation accepts only ASCII local parts."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return f"2001:db8::{rng.randrange(1, 0xFFFF):x}"
    net = rng.choice(("192.0.2", "198.51.100", "203.0.113"))
    return f"{net}.{rng.randrange(1, 255)}"


def _at(rng: random.Random, start: datetime, end: datetime) -> datetime:
    seconds = max(int((end - start).total_seconds()), 1)
    return start + timedelta(seconds=rng.randrange(seconds))


def _dated(obj, when):
    obj._history_date = when
    return obj


class _Builder:
    def __init__(self, seed: int, customers: int, today: datetime):
        self.rng = random.Random(seed)
        self.n = customers
        self.end = today
        self.start = today - SPAN
        self.rows: dict[type, list] = {}

    def add(self, obj, when):
        self.rows.setdefault(type(obj), []).append(_dated(obj, when))

    def customers(self):
        rng = self.rng
        for i in range(self.n):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            joined = _at(rng, self.start, self.end - timedelta(days=7))
            slug = _ascii(f"{first}.{last}".lower().replace("'", ""))
            customer = Customer(
                email=f"{slug}.{i}@{DEMO_EMAIL_DOMAIN}",
                full_name=f"{first} {last}",
                phone=f"+44 20 7946 0{i % 1000:03d}",
                avatar_url=f"https://avatars.{DEMO_EMAIL_DOMAIN}/{i}.png" if i % 3 else "",
                date_of_birth=(self.end - timedelta(days=rng.randrange(18 * 365, 80 * 365))).date(),
                created_at=joined,
                updated_at=joined,
            )
            self.add(customer, joined)

    def per_customer(self, customer: Customer):
        rng, joined = self.rng, customer.created_at
        for _ in range(rng.randint(1, 5)):
            at = _at(rng, joined, self.end)
            self.add(
                Session(
                    customer=customer,
                    token=f"{rng.getrandbits(128):032x}",
                    ip_address=_ip(rng),
                    user_agent=rng.choice(AGENTS),
                    created_at=at,
                    expires_at=at + timedelta(days=30),
                ),
                at,
            )
        for _ in range(rng.randint(1, 4)):
            at = _at(rng, joined, self.end)
            city, country = rng.choice(CITIES)
            self.add(
                Order(
                    customer=customer,
                    number=f"ORD-{len(self.rows.get(Order, [])) + 1:06d}",
                    status=Order.Status.PENDING,
                    total=Decimal(rng.randrange(500, 50000)) / 100,
                    shipping_name=customer.full_name,
                    shipping_address=f"{rng.randint(1, 200)} {rng.choice(STREETS)}",
                    shipping_postcode=f"{rng.randint(10000, 99999)}",
                    shipping_city=city,
                    shipping_country=country,
                    created_at=at,
                ),
                at,
            )
        for _ in range(rng.randint(1, 5)):
            at = _at(rng, joined, self.end)
            kind = rng.choice(Notification.Kind.values)
            self.add(
                Notification(
                    customer=customer,
                    kind=kind,
                    title=f"{Notification.Kind(kind).label} for {customer.full_name}",
                    body="Details are in your account.",
                    created_at=at,
                ),
                at,
            )
        topics = rng.sample(Notification.Kind.values, k=rng.randint(1, 3))
        for channel in rng.sample(NotificationPreference.Channel.values, k=rng.randint(1, 2)):
            for topic in topics:
                self.add(
                    NotificationPreference(
                        customer=customer,
                        channel=channel,
                        topic=topic,
                        enabled=rng.random() < 0.8,
                        updated_at=joined,
                    ),
                    joined,
                )
        for _ in range(rng.randint(2, 10)):
            at = _at(rng, joined, self.end)
            self.add(
                AnalyticsEvent(
                    customer=customer,
                    name=rng.choice(EVENTS),
                    ip_address=_ip(rng),
                    properties={
                        "path": f"/p/{rng.randint(1, 500)}",
                        "referrer": rng.choice(["search", "email", "direct"]),
                    },
                    occurred_at=at,
                ),
                at,
            )
        for _ in range(rng.randint(1, 2)):
            at = _at(rng, joined, self.end)
            title = rng.choice(DOCUMENTS)
            self.add(
                Document(
                    owner=customer,
                    title=f"{title} — {customer.full_name}",
                    content=f"{title} submitted by {customer.full_name} ({customer.email}).",
                    created_at=at,
                    updated_at=at,
                ),
                at,
            )
        if rng.random() < 0.4:
            at = _at(rng, joined, self.end)
            digest = hashlib.sha256(f"{customer.email}{at}".encode()).hexdigest()
            self.add(
                PasswordResetToken(
                    customer=customer,
                    token_hash=digest,
                    created_at=at,
                    expires_at=at + timedelta(hours=24),
                    used_at=at + timedelta(minutes=rng.randint(1, 60))
                    if rng.random() < 0.7
                    else None,
                ),
                at,
            )

    def messages(self, customers: list[Customer]):
        rng = self.rng
        for _ in range(self.n * 2):
            sender, recipient = rng.sample(customers, 2)
            at = _at(rng, max(sender.created_at, recipient.created_at), self.end)
            self.add(
                Message(
                    sender=sender,
                    recipient=recipient,
                    sender_name=sender.full_name,
                    body=f"Hi {recipient.full_name.split()[0]}, is the item still available?",
                    created_at=at,
                ),
                at,
            )


def _edits(rng: random.Random, customers, orders, notifications, end):
    """Later changes, written as history rows dated when they happened."""
    changed = []
    for customer in rng.sample(customers, k=len(customers) * 2 // 5):
        customer.phone = f"+44 161 496 0{rng.randrange(1000):03d}"
        customer.updated_at = _at(rng, customer.created_at, end)
        changed.append(_dated(customer, customer.updated_at))
    bulk_update_with_context(changed, Customer, ["phone", "updated_at"])
    changed = []
    for order in orders:
        order.status = rng.choice([Order.Status.PAID, Order.Status.SHIPPED, Order.Status.CANCELLED])
        changed.append(_dated(order, order.created_at + timedelta(days=rng.randint(1, 5))))
    bulk_update_with_context(changed, Order, ["status"])
    changed = []
    for notification in notifications:
        if rng.random() < 0.7:
            notification.read_at = notification.created_at + timedelta(hours=rng.randint(1, 72))
            changed.append(_dated(notification, notification.read_at))
    bulk_update_with_context(changed, Notification, ["read_at"])


def demo_seed(
    *, seed: int = 1, customers: int = 200, actor=None, reason: str = ""
) -> DemoSeedResult:
    """Create the demo data once; a second run finds it and adds nothing."""
    _require_demo()
    existing = Customer.all_objects.filter(email__endswith=f"@{DEMO_EMAIL_DOMAIN}").count()
    if existing:
        return DemoSeedResult(created=False, counts={"shop.Customer": existing})
    today = timezone.make_aware(datetime.combine(timezone.now().date(), time.min))
    builder = _Builder(seed, customers, today)
    officer = get_user_model().objects.filter(username="officer").first()
    with transaction.atomic():
        with change_context(reason="Demo data: sign-up and activity"):
            builder.customers()
            created = bulk_create_with_context(builder.rows[Customer], Customer)
            for customer in created:
                builder.per_customer(customer)
            builder.messages(created)
            for model, objs in builder.rows.items():
                if model is not Customer:
                    bulk_create_with_context(objs, model)
        with change_context(
            user=officer,
            ip="192.0.2.10",
            user_agent=AGENTS[0],
            reason="Demo data: later corrections",
        ):
            _edits(builder.rng, created, builder.rows[Order], builder.rows[Notification], today)
        consents = _consents(random.Random(seed + 1), created, today)
        _retention(builder.rng, created, officer, today)
        _requests(builder.rng, created, officer)
        counts = {model._meta.label: len(objs) for model, objs in builder.rows.items()}
        counts[ConsentEvent._meta.label] = consents
        ledger_append(
            action=LedgerAction.DEMO_SEED,
            actor=actor,
            reason=reason or "Demo data",
            target="shop",
            counts=counts,
            details={"seed": seed},
        )
    return DemoSeedResult(created=True, counts=counts)


# Consent purposes and their texts: (slug, name, description, [(days before today, text)]).
# Marketing has a second version, so the demo shows subjects on either.
DEMO_PURPOSES = [
    (
        "marketing",
        "Marketing emails",
        "News, offers and recommendations by email.",
        [
            (4 * 365, "Yes, send me news and offers from the shop by email."),
            (
                180,
                "Yes, send me news, offers and recommendations chosen for me from the shop "
                "by email. I can unsubscribe at any time from any email or my account.",
            ),
        ],
    ),
    (
        "analytics",
        "Analytics",
        "Measuring how the shop is used, to improve it.",
        [(4 * 365, "Yes, the shop may measure how I use it to improve it.")],
    ),
    (
        "third-party-sharing",
        "Sharing with partners",
        "Sharing my contact details with delivery and payment partners' offers.",
        [(4 * 365, "Yes, the shop may share my name and email with its partners for offers.")],
    ),
]
CONSENT_POINTS = ("signup form", "preference centre", "checkout", "cookie banner")
# Purposes that sell or share personal data: a Global Privacy Control signal opts out of them.
SALE_OR_SHARING = {"third-party-sharing"}


def _consents(rng: random.Random, customers, today) -> int:
    """Purposes, texts and each customer's grants and withdrawals through `consent_record`,
    in time order: some granted, some withdrawn, and the first customer re-granted."""
    purposes = {}
    for slug, name, description, texts in DEMO_PURPOSES:
        purposes[slug], _ = ConsentPurpose.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "description": description,
                "sale_or_sharing": slug in SALE_OR_SHARING,
            },
        )
        for version, (days_ago, wording) in enumerate(texts, start=1):
            ConsentText.objects.get_or_create(
                purpose=purposes[slug],
                version=version,
                defaults={"text": wording, "published_at": today - timedelta(days=days_ago)},
            )
    recorded = 0
    chances = {"marketing": 0.6, "analytics": 0.7, "third-party-sharing": 0.25}
    for i, customer in enumerate(customers):
        ip, agent = _ip(rng), rng.choice(AGENTS)
        for slug, chance in chances.items():
            if i and rng.random() >= chance:
                continue
            at = customer.created_at
            changes = [True]
            if i == 0 and slug == "marketing":
                changes = [True, False, True]  # re-granted: the history shows all three
            elif rng.random() < 0.3:
                changes = [True, False]
            for granted in changes:
                consent_record(
                    subject=customer,
                    purpose=purposes[slug],
                    granted=granted,
                    ip=ip,
                    user_agent=agent,
                    collection_point="signup form"
                    if at == customer.created_at
                    else rng.choice(CONSENT_POINTS[1:]),
                    at=at,
                )
                at = _at(rng, at, today)
                recorded += 1
    return recorded


# The seed's retention policies for the sample shop: (name, model, basis, days, action,
# archive, exclusions). Soft-deleted customers are anonymised, not deleted: their orders are
# accounting records that keep pointing at them.
DEMO_POLICIES = [
    ("Sessions: 90 days", Session, "created_at", 90, PolicyAction.HARD_DELETE, False, []),
    (
        "Read notifications: 30 days after reading",
        Notification,
        "read_at",
        30,
        PolicyAction.HARD_DELETE,
        False,
        [{"field": "read_at", "lookup": "isnull", "value": True}],
    ),
    (
        "Password-reset tokens: 24 hours",
        PasswordResetToken,
        "created_at",
        1,
        PolicyAction.HARD_DELETE,
        False,
        [],
    ),  # fmt: skip
    (
        "Analytics events: 365 days, archived",
        AnalyticsEvent,
        "occurred_at",
        365,
        PolicyAction.HARD_DELETE,
        True,
        [],
    ),  # fmt: skip
    (
        "Deleted customers: anonymised after 30 days",
        Customer,
        "deleted_at",
        30,
        PolicyAction.ANONYMISE,
        False,
        [{"field": "email", "lookup": "endswith", "value": "@erased.invalid"}],
    ),
    (
        "Consent evidence of gone customers: 6 years",
        ConsentEvent,
        "occurred_at",
        2190,
        PolicyAction.HARD_DELETE,
        False,
        [],
    ),  # fmt: skip
    (
        "Analytics history: 2 years",
        AnalyticsEvent.history.model,
        "history_date",
        730,
        PolicyAction.HARD_DELETE,
        False,
        [],
    ),  # fmt: skip
]


def _retention(rng: random.Random, customers, officer, today) -> None:
    """The seed's policies, a few customers deleted (one long enough ago to be anonymised
    by the next purge) and a legal hold, so every retention page has something to show."""
    for name, model, basis, days, action, archive, exclusions in DEMO_POLICIES:
        if not RetentionPolicy.objects.filter(name=name).exists():
            policy_save(
                policy=RetentionPolicy(
                    name=name,
                    target=ContentType.objects.get_for_model(model),
                    basis_field=basis,
                    period_days=days,
                    action=action,
                    archive=archive,
                    exclusions=exclusions,
                ),
                actor=None,
                reason="Demo data: the sample shop's retention policies",
            )
    gone = rng.sample(customers, 3) if len(customers) >= 10 else []  # small seeds keep all
    with change_context(user=officer, ip="192.0.2.10", user_agent=AGENTS[0]):
        for days_ago, customer in zip((45, 10, 2), gone, strict=False):
            rows_soft_delete(
                queryset=Customer.objects.filter(pk=customer.pk),
                actor=officer,
                reason="Demo data: customer closed the account",
            )
            # Backdated, with what the delete hid along with the customer.
            deletion = Customer.all_objects.get(pk=customer.pk).deletion_id
            for model in (Customer, Document):
                model.all_objects.filter(deletion_id=deletion).update(
                    deleted_at=today - timedelta(days=days_ago)
                )
        held = rng.choice([c for c in customers if c not in gone])
        hold_place(
            record=held,
            reason="Demo data: disputed chargeback, records kept until the claim is settled",
            ground=LegalHold.Ground.LEGAL_CLAIMS,
            actor=officer,
        )


def _requests(rng: random.Random, customers, officer) -> None:
    """Data-subject requests in every situation the request pages show: overdue, due soon,
    extended, rejected with its reason, completed and just received."""
    now = timezone.now()
    live = [c for c in customers if c.deleted_at is None] or customers
    people = rng.sample(live, min(6, len(live)))
    Kind, Method = SubjectRequest.Kind, SubjectRequest.VerificationMethod

    def create(index, kind, jurisdiction, days_ago):
        return request_create(
            subject=people[index % len(people)],
            kind=kind,
            jurisdiction=jurisdiction,
            received_at=now - timedelta(days=days_ago, hours=rng.randint(1, 8)),
            actor=officer,
            reason="Demo data: request received by email",
        )

    def verify(request):
        return request_verify(
            request=request, actor=officer, method=Method.EMAIL, note="Demo data: link confirmed"
        )

    with change_context(user=officer, ip="192.0.2.10", user_agent=AGENTS[0]):
        overdue = create(0, Kind.ACCESS, Jurisdiction.GDPR, 40)
        request_start(request=verify(overdue), actor=officer)
        verify(create(1, Kind.ERASURE, Jurisdiction.GDPR, 26))  # due within days
        request_extend(
            request=create(2, Kind.ACCESS, Jurisdiction.CCPA, 30),
            actor=officer,
            reason="Demo data: records spread over several systems; extended by 30 days",
            days=30,
        )
        request_reject(
            request=create(3, Kind.ERASURE, Jurisdiction.GDPR, 12),
            actor=officer,
            reason="Demo data: the orders are kept for 10 years under tax law (Art. 17(3)(b)); "
            "everything else was already deleted",
        )
        done = request_start(
            request=verify(create(4, Kind.RESTRICTION, Jurisdiction.GDPR, 20)), actor=officer
        )
        request_complete(request=done, actor=officer, reason="Demo data: restriction in place")
        create(5, Kind.ACCESS, Jurisdiction.GDPR, 1)
