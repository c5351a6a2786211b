"""The subject overview, search and restriction of processing (Art. 18) in the admin."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from retention.models import LegalHold, PurgeRun, RetentionPolicy
from retention.services import RetentionRefused, hold_place, policy_purge
from shop.models import Customer, Document, Message, Session
from versions.models import LedgerAction, LedgerEntry


def _restrict(customer, officer, **extra):
    return hold_place(
        record=customer,
        ground=LegalHold.Ground.ACCURACY_CONTESTED,
        requested_by="the data subject, by email",
        reason="Disputes the date of birth on file",
        actor=officer,
        **extra,
    )


def test_overview_lists_every_model_with_rows_and_history(officer_client, customer):
    """Rows per model with links, soft-deleted ones counted, and history rows counted."""
    other = Customer.objects.create(email="bob@example.org", full_name="Bob")
    Message.objects.create(sender=other, recipient=customer, sender_name="Bob", body="hi")
    document = Document.objects.create(owner=customer, title="Invoice", content="…")
    Document.objects.filter(pk=document.pk).delete()

    response = officer_client.get(reverse("admin:compliance_subject_overview", args=[customer.pk]))

    assert response.status_code == 200
    sections = {m.entry.label: m for m in response.context["overview"].models}
    assert sections["shop.Message"].total == 1
    assert sections["shop.Document"].total == 1
    assert sections["shop.Document"].deleted == 1
    assert sections["shop.Customer"].history == 1
    page = response.content.decode()
    assert reverse("admin:shop_message_change", args=[Message.objects.get().pk]) in page
    assert "1 deleted" in page


def test_overview_is_reached_from_the_subject_page_and_from_search(officer_client, customer):
    """The customer's page links to the overview; a search by email or id redirects to it."""
    overview = reverse("admin:compliance_subject_overview", args=[customer.pk])
    change = officer_client.get(reverse("admin:shop_customer_change", args=[customer.pk]))
    assert overview in change.content.decode()

    search = reverse("admin:compliance_subject_search")
    assert officer_client.post(search, {"q": "ADA@example.org"}).url == overview
    assert officer_client.post(search, {"q": str(customer.pk)}).url == overview
    missing = officer_client.post(search, {"q": "nobody@example.org"})
    assert missing.status_code == 200
    assert "No customer has this email or id." in missing.content.decode()


def test_overview_of_an_unknown_subject_is_a_404(officer_client, db):
    """A malformed or unknown id is a 404, not a traceback."""
    assert (
        officer_client.get(reverse("admin:compliance_subject_overview", args=["abc"])).status_code
        == 404
    )
    assert (
        officer_client.get(reverse("admin:compliance_subject_overview", args=[999])).status_code
        == 404
    )


def test_auditor_sees_the_overview_but_cannot_restrict(auditor_client, customer):
    """Auditors read the overview; the restrict and lift pages refuse them."""
    overview = auditor_client.get(reverse("admin:compliance_subject_overview", args=[customer.pk]))
    assert overview.status_code == 200
    assert "Restrict processing</a>" not in overview.content.decode()
    restrict = reverse("admin:compliance_subject_restrict", args=[customer.pk])
    assert auditor_client.get(restrict).status_code == 403
    response = auditor_client.post(
        restrict, {"ground": "art18_1_a", "requested_by": "x", "reason": "y"}
    )
    assert response.status_code == 403
    assert not LegalHold.objects.exists()


def test_officer_restricts_and_lifts_with_ledger_entries(officer_client, officer, customer):
    """Restricting records ground and who asked; lifting is a ledger entry too."""
    response = officer_client.post(
        reverse("admin:compliance_subject_restrict", args=[customer.pk]),
        {"ground": "art18_1_a", "requested_by": "The data subject", "reason": "Contested"},
    )
    assert response.status_code == 302
    hold = LegalHold.objects.get()
    assert hold.is_restriction and hold.requested_by == "The data subject"
    page = officer_client.get(
        reverse("admin:compliance_subject_overview", args=[customer.pk])
    ).content.decode()
    assert "Processing is restricted" in page

    lift = reverse("admin:compliance_restriction_lift", args=[hold.pk])
    assert officer_client.post(lift, {"reason": ""}).status_code == 200  # reason required
    assert officer_client.post(lift, {"reason": "Corrected"}).status_code == 302
    hold.refresh_from_db()
    assert not hold.is_active
    actions = list(LedgerEntry.objects.order_by("pk").values_list("action", "details"))
    assert actions[-2][0] == LedgerAction.HOLD_PLACE and actions[-2][1]["restriction"] is True
    assert actions[-1][0] == LedgerAction.HOLD_RELEASE and actions[-1][1]["restriction"] is True


def test_restriction_needs_who_asked(officer, customer):
    """Art. 18 restrictions are made at someone's request: who asked is required."""
    with pytest.raises(RetentionRefused, match="who asked"):
        hold_place(
            record=customer,
            ground=LegalHold.Ground.OBJECTION_PENDING,
            reason="Objection under review",
            actor=officer,
        )
    assert not LegalHold.objects.exists()


def test_gdpr_art_18_restricted_rows_are_marked_and_change_needs_a_reason(
    officer_client, officer, customer
):
    """A restricted subject's rows are marked in lists and pages; a change needs a reason,
    which its history keeps."""
    _restrict(customer, officer)
    changelist = officer_client.get(reverse("admin:shop_customer_changelist")).content.decode()
    assert 'class="restricted-marker"' in changelist

    url = reverse("admin:shop_customer_change", args=[customer.pk])
    page = officer_client.get(url)
    assert "Reason for changing restricted data" in page.content.decode()
    data = {"email": customer.email, "full_name": "Ada King", "phone": "", "avatar_url": ""}
    refused = officer_client.post(url, data)
    assert refused.status_code == 200  # the form comes back with an error
    customer.refresh_from_db()
    assert customer.full_name == "Ada Lovelace"

    saved = officer_client.post(url, {**data, "restriction_reason": "Court order 12/3"})
    assert saved.status_code == 302
    customer.refresh_from_db()
    assert customer.full_name == "Ada King"
    assert customer.history.first().history_change_reason == "Court order 12/3"


def test_gdpr_art_18_purge_skips_restricted_rows_and_says_so(officer, customer):
    """A purge leaves a restricted subject's expired rows and counts them as held."""
    old = timezone.now() - timedelta(days=400)
    Session.objects.create(customer=customer, created_at=old, expires_at=old)
    _restrict(customer, officer)
    policy = RetentionPolicy.objects.create(
        name="Sessions",
        target_id=_content_type(Session),
        period_days=90,
        action="hard_delete",
    )

    run = policy_purge(policy=policy, actor=officer, reason="test")

    assert Session.objects.count() == 1
    assert run.held == 1
    assert PurgeRun.objects.get().held == 1


def _content_type(model):
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(model).pk


def test_overview_links_to_the_pages_about_the_subject(officer_client, auditor, customer):
    """Officers get consents, export, erasure and restriction; auditors only what they read."""
    from django.test import Client

    url = reverse("admin:compliance_subject_overview", args=[customer.pk])
    pages = {
        name: reverse(f"admin:{name}", args=[customer.pk])
        for name in [
            "compliance_consent_timeline",
            "compliance_consent_receipt",
            "compliance_subject_export",
            "compliance_subject_erasure",
            "compliance_subject_restrict",
        ]
    }
    page = officer_client.get(url).content.decode()
    assert all(link in page for link in pages.values())
    auditor_client = Client()
    auditor_client.force_login(auditor)
    seen = auditor_client.get(url).content.decode()
    assert pages["compliance_consent_timeline"] in seen
    for name in ["compliance_subject_export", "compliance_subject_erasure",
                 "compliance_subject_restrict"]:  # fmt: skip
        assert pages[name] not in seen


def test_overview_counts_rows_a_restriction_on_the_subject_keeps(officer_client, officer, customer):
    """A restriction on the person holds every row about them: the overview counts them."""
    Session.objects.create(customer=customer, expires_at=timezone.now() + timedelta(days=1))
    _restrict(customer, officer)
    response = officer_client.get(reverse("admin:compliance_subject_overview", args=[customer.pk]))
    sections = {m.entry.label: m for m in response.context["overview"].models}
    assert sections["shop.Session"].held == 1
    assert sections["shop.Customer"].held == 1
