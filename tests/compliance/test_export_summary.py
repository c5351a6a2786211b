"""The export's readable summary (summary.html): plain words, the subject's data only, the
Art. 15 information, retention as declared and applied, and the active language."""

import hashlib
import json
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone, translation

from compliance.models import ConsentPurpose, ConsentText
from compliance.services import consent_record, subject_export
from shop.models import Customer, Message, Order

HEADINGS = [
    "Who is responsible",
    "Controller",
    "Data protection officer",
    "Purposes",
    "Categories of data",
    "Recipients",
    "How long it is kept",
    "Where it comes from",
    "Automated decision-making",
    "Transfers outside the EU/EEA",
    "Rectification",
    "Erasure",
    "Restriction",
    "Objection",
    "Right to complain",
]


@pytest.fixture(autouse=True)
def _controller(settings):
    settings.COMPLIANCE_CONTROLLER_NAME = "Example Shop Ltd"
    settings.COMPLIANCE_DPO_CONTACT = "dpo@example.org"
    settings.COMPLIANCE_SUPERVISORY_AUTHORITY = "Information Commissioner's Office"


@pytest.fixture
def data(customer):
    purpose = ConsentPurpose.objects.create(slug="marketing", name="Marketing emails")
    ConsentText.objects.create(
        purpose=purpose,
        version=1,
        text="Yes, send me offers by email.",
        published_at=timezone.now() - timedelta(days=9),
    )
    consent_record(
        subject=customer,
        purpose=purpose,
        granted=True,
        ip="198.51.100.7",
        collection_point="signup form",
    )
    Order.objects.create(
        customer=customer,
        number="ORD-1",
        status=Order.Status.SHIPPED,
        total="12.50",
        shipping_name="Ada Lovelace",
        shipping_address="12 St James's Square",
        shipping_postcode="SW1Y 4JH",
        shipping_city="London",
        shipping_country="GB",
        created_at=timezone.make_aware(timezone.datetime(2024, 3, 5, 10, 0)),
    )
    other = Customer.objects.create(email="grace@example.org", full_name="Grace Hopper")
    Message.objects.create(sender=customer, recipient=other, sender_name="Ada", body="hi")
    Message.objects.create(sender=other, recipient=customer, sender_name="Grace", body="yo")
    return other


def _summary(customer, officer):
    export = subject_export(subject=customer, actor=officer, reason="request 7")
    with zipfile.ZipFile(export.filename and _path(export)) as zf:
        return zf.read("summary.html").decode(), json.loads(zf.read("manifest.json")), zf


def _path(export):
    from compliance.services import export_path

    return export_path(export)


def test_summary_names_data_in_plain_words(customer, officer, data):
    """A consent shows its purpose's name and wording, an order its status label and date."""
    html, _, _ = _summary(customer, officer)
    assert "Marketing emails" in html and "Yes, send me offers by email." in html
    assert "Shipped" in html and ">shipped<" not in html
    assert "5 Mar 2024" in html and "2024-03-05" not in html


def test_summary_holds_no_internal_column(customer, officer, data):
    """Keys, soft-delete and staff bookkeeping columns are not shown."""
    html, _, _ = _summary(customer, officer)
    for column in ("deletion_id", "verified_by", "history_user", "Deletion", "Customer</th>"):
        assert column not in html


def test_summary_holds_no_other_persons_data(customer, officer, data):
    """The other party's name and email stay out; their message shows redacted."""
    html, _, _ = _summary(customer, officer)
    assert "Grace" not in html and "grace@example.org" not in html
    assert "Ada" in html


def test_summary_has_every_art_15_heading_and_the_contacts(customer, officer, data):
    """Every Art. 15 heading is there, with the controller, DPO and authority."""
    html, _, _ = _summary(customer, officer)
    for heading in HEADINGS:
        assert heading in html, heading
    for contact in ("Example Shop Ltd", "dpo@example.org", "Information Commissioner"):
        assert contact in html
    assert "<script" not in html and "http" not in html.split("</style>")[0].lower()


def test_summary_retention_agrees_with_registry_and_manifest(customer, officer, data):
    """Orders are kept 10 years (the registry's declared period) in manifest and summary."""
    html, manifest, _ = _summary(customer, officer)
    orders = next(m for m in manifest["models"] if m["model"] == "shop.Order")
    assert orders["retention_period"].startswith("10 years")
    assert orders["retention_period"] in html


def test_summary_is_listed_in_the_manifest_with_its_sha256(customer, officer, data):
    """summary.html is in the manifest's files with its SHA-256 and size."""
    export = subject_export(subject=customer, actor=officer, reason="r")
    with zipfile.ZipFile(_path(export)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        body = zf.read("summary.html")
    listed = manifest["files"]["summary.html"]
    assert listed["sha256"] == hashlib.sha256(body).hexdigest()
    assert listed["bytes"] == len(body)


def test_summary_is_in_german_when_german_is_active(customer, officer, data):
    """Run with German active, the summary's headings are German."""
    with translation.override("de"):
        html, _, _ = _summary(customer, officer)
    assert 'lang="de"' in html
    assert "Ihre personenbezogenen Daten" in html and "Beschwerderecht" in html
