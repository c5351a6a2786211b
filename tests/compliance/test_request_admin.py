"""The requests' admin: list, filters, search, add form, transition forms, and roles."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from compliance.admin import REQUEST_TRANSITIONS
from compliance.models import Jurisdiction, SubjectRequest
from compliance.services import request_create, request_reject, request_verify
from shop.models import Customer
from versions.models import LedgerAction, LedgerEntry

State = SubjectRequest.State
CHANGELIST = "admin:compliance_subjectrequest_changelist"


def _create(customer, officer, *, days_ago=0, jurisdiction=Jurisdiction.GDPR, kind="access"):
    return request_create(
        subject=customer,
        kind=kind,
        jurisdiction=jurisdiction,
        received_at=timezone.now() - timedelta(days=days_ago),
        actor=officer,
    )


def _change_url(request):
    return reverse("admin:compliance_subjectrequest_change", args=[request.pk])


def _transition_url(request, name):
    return reverse("admin:compliance_subjectrequest_transition", args=[request.pk, name])


def _listed(client, **params):
    response = client.get(reverse(CHANGELIST), params, follow=True)
    assert response.status_code == 200
    return sorted(obj.pk for obj in response.context["cl"].result_list)


@pytest.fixture
def requests(customer, officer):
    """Overdue, due in 3 days, due in a month, and a rejected one about another person."""
    bob = Customer.objects.create(email="bob@example.net", full_name="Bob")
    rejected = _create(bob, officer, days_ago=60)
    request_reject(request=rejected, actor=officer, reason="Unfounded")
    return {
        "overdue": _create(customer, officer, days_ago=40),
        "soon": _create(customer, officer, days_ago=42, jurisdiction=Jurisdiction.CCPA),
        "later": _create(customer, officer, days_ago=1),
        "rejected": rejected,
    }


def test_officer_records_a_request_with_the_add_form(officer_client, customer):
    """The form takes kind, subject, jurisdiction and receipt; the due date is computed."""
    received = timezone.localtime() - timedelta(days=3)
    response = officer_client.post(
        reverse("admin:compliance_subjectrequest_add"),
        {
            "kind": "erasure",
            "subject": customer.pk,
            "jurisdiction": "ccpa",
            "received_0": received.strftime("%Y-%m-%d"),
            "received_1": received.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302
    request = SubjectRequest.objects.get()
    assert request.subject == customer and request.kind == "erasure"
    assert request.due_at == request.received_at + timedelta(days=45)
    assert abs(request.received_at - received) < timedelta(seconds=1)
    assert LedgerEntry.objects.filter(action=LedgerAction.REQUEST).count() == 1


def test_add_form_refuses_a_future_receipt_and_a_missing_subject(officer_client, customer):
    """Both are form errors; nothing is recorded."""
    tomorrow = timezone.localtime() + timedelta(days=1)
    response = officer_client.post(
        reverse("admin:compliance_subjectrequest_add"),
        {
            "kind": "access",
            "subject": "",
            "jurisdiction": "gdpr",
            "received_0": tomorrow.strftime("%Y-%m-%d"),
            "received_1": "10:00:00",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "in the future" in str(errors["received"]) and "subject" in errors
    assert not SubjectRequest.objects.exists()


def test_list_shows_due_dates_and_highlights_overdue_ones(officer_client, requests):
    """The overdue request's due date is marked; the others are not."""
    response = officer_client.get(reverse(CHANGELIST))
    content = response.content.decode()
    assert content.count('class="request-overdue"') == 1
    due = timezone.localtime(requests["overdue"].due_at)
    assert f"{due:%Y-%m-%d %H:%M} — overdue" in content


def test_overdue_and_due_soon_filters(officer_client, requests):
    """ "Overdue" and "Due within 7 days" list open requests only."""
    assert _listed(officer_client, deadline="overdue") == [requests["overdue"].pk]
    assert _listed(officer_client, deadline="due_soon") == [requests["soon"].pk]
    assert len(_listed(officer_client)) == 4


def test_state_kind_and_jurisdiction_filters(officer_client, requests):
    """The stock filters on state, kind and jurisdiction."""
    assert _listed(officer_client, state="rejected") == [requests["rejected"].pk]
    assert _listed(officer_client, jurisdiction="ccpa") == [requests["soon"].pk]
    assert _listed(officer_client, kind="erasure") == []


def test_search_by_subject_email_or_id(officer_client, requests, customer):
    """An email (or part of one) or a subject's id finds that person's requests."""
    mine = sorted(requests[k].pk for k in ("overdue", "soon", "later"))
    assert _listed(officer_client, q="ada@example.org") == mine
    assert _listed(officer_client, q="EXAMPLE.NET") == [requests["rejected"].pk]
    assert _listed(officer_client, q=str(customer.pk)) == mine
    assert _listed(officer_client, q="nobody@example.com") == []


def test_change_page_shows_due_dates_and_the_state_buttons(officer_client, requests):
    """No Save button; the computed due date is shown; only the state's transitions appear."""
    request = requests["later"]
    page = officer_client.get(_change_url(request)).content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    due, latest = (timezone.localtime(d) for d in (request.due_at, request.latest_due_at))
    assert f"{due:%Y-%m-%d %H:%M}" in page and f"{latest:%Y-%m-%d %H:%M}" in page
    for name in ("verify", "extend", "reject"):
        assert _transition_url(request, name) in page
    for name in ("start", "complete"):
        assert _transition_url(request, name) not in page
    overdue = officer_client.get(_change_url(requests["overdue"])).content.decode()
    assert "— overdue" in overdue
    assert _transition_url(requests["overdue"], "extend") not in overdue  # too late now


def test_officer_runs_every_transition_through_its_form(officer_client, customer, officer):
    """Verify, extend, start and complete: each a confirmation form, a message, a new state."""
    request = _create(customer, officer, days_ago=2)
    steps = [
        ("verify", {"method": "email", "note": "Reply from the address on record"}, "verified"),
        ("extend", {"months": "1", "reason": "Records in three systems"}, "verified"),
        ("start", {"reason": ""}, "in_progress"),
        ("complete", {"reason": "Export sent"}, "completed"),
    ]
    for name, data, state in steps:
        assert officer_client.get(_transition_url(request, name)).status_code == 200
        response = officer_client.post(_transition_url(request, name), data, follow=True)
        assert response.redirect_chain[-1][0] == _change_url(request)
        assert REQUEST_TRANSITIONS[name].done in response.content.decode()
        request.refresh_from_db()
        assert request.state == state, name
    assert request.extension_reason == "Records in three systems"
    assert request.verified_by == officer
    page = officer_client.get(_change_url(request)).content.decode()
    assert 'class="request-transition"' not in page  # final: no buttons


def test_refused_transition_shows_what_to_do_on_its_form(officer_client, customer, officer):
    """Starting an unverified request re-shows the form with the service's message."""
    request = _create(customer, officer)
    response = officer_client.post(_transition_url(request, "start"), {"reason": ""})
    assert response.status_code == 200
    assert "Verify the requester&#x27;s identity first" in response.content.decode()
    request.refresh_from_db()
    assert request.state == State.RECEIVED


def test_extend_form_refuses_a_late_extension_with_its_message(officer_client, customer, officer):
    """After the first month the form shows why the extension is refused."""
    request = _create(customer, officer, days_ago=35)
    response = officer_client.post(
        _transition_url(request, "extend"), {"months": "2", "reason": "Volume"}
    )
    assert "Too late to extend" in response.content.decode()
    request.refresh_from_db()
    assert request.extended_at is None


def test_reject_form_needs_a_reason_and_the_page_shows_it(officer_client, customer, officer):
    """Art. 12(4) in the admin: no reason, no rejection; the reason is shown afterwards."""
    request = _create(customer, officer)
    response = officer_client.post(_transition_url(request, "reject"), {"reason": ""})
    assert response.status_code == 200 and response.context["form"].errors["reason"]
    officer_client.post(_transition_url(request, "reject"), {"reason": "Manifestly excessive"})
    request.refresh_from_db()
    assert request.state == State.REJECTED
    assert "Manifestly excessive" in officer_client.get(_change_url(request)).content.decode()


def test_unknown_transition_is_not_found(officer_client, customer, officer):
    """A made-up action name is a 404, not an error page."""
    request = _create(customer, officer)
    assert officer_client.get(_transition_url(request, "approve")).status_code == 404


def test_nobody_deletes_a_request(officer_client, admin_client, customer, officer):
    """The record of how a request was handled is kept: delete is refused to everyone."""
    request = _create(customer, officer)
    url = reverse("admin:compliance_subjectrequest_delete", args=[request.pk])
    for client in (officer_client, admin_client):
        assert client.post(url, {"post": "yes"}).status_code == 403
    assert SubjectRequest.objects.filter(pk=request.pk).exists()


def test_auditor_sees_requests_and_every_write_path_is_refused(auditor_client, customer, officer):
    """List and page open without buttons; add, change, delete and each transition are 403."""
    request = request_verify(
        request=_create(customer, officer, days_ago=3), actor=officer, method="email"
    )
    assert auditor_client.get(reverse(CHANGELIST)).status_code == 200
    page = auditor_client.get(_change_url(request))
    assert page.status_code == 200
    assert 'class="request-transition"' not in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    add = reverse("admin:compliance_subjectrequest_add")
    assert auditor_client.get(add).status_code == 403
    assert auditor_client.post(add, {"kind": "access", "subject": customer.pk}).status_code == 403
    assert auditor_client.post(_change_url(request), {}).status_code == 403
    delete = reverse("admin:compliance_subjectrequest_delete", args=[request.pk])
    assert auditor_client.post(delete, {"post": "yes"}).status_code == 403
    data = {"method": "email", "reason": "x", "months": "1"}
    for name in REQUEST_TRANSITIONS:
        assert auditor_client.get(_transition_url(request, name)).status_code == 403, name
        assert auditor_client.post(_transition_url(request, name), data).status_code == 403, name
    request.refresh_from_db()
    assert request.state == State.VERIFIED and request.extended_at is None
    assert SubjectRequest.objects.count() == 1
    assert LedgerEntry.objects.filter(action=LedgerAction.REQUEST).count() == 2


def test_request_tools_hook_adds_buttons_to_the_page(officer_client, customer, officer):
    """What `get_request_tools` returns appears as buttons in the `request_tools` block."""
    request = _create(customer, officer)
    model_admin = admin.site._registry[SubjectRequest]
    model_admin.get_request_tools = lambda http_request, obj: [("Run export", f"/run/{obj.pk}/")]
    try:
        page = officer_client.get(_change_url(request)).content.decode()
    finally:
        del model_admin.get_request_tools
    assert f'<a href="/run/{request.pk}/" class="request-tool">Run export</a>' in page


@pytest.mark.parametrize(
    "kind, label, url_name",
    [
        ("access", "Run export", "compliance_subject_export"),
        ("erasure", "Preview erasure", "compliance_subject_erasure"),
        ("restriction", "Restrict processing", "compliance_subject_restrict"),
    ],
)
def test_request_page_links_to_what_its_kind_needs(
    officer_client, auditor, customer, officer, kind, label, url_name
):
    """An officer's request page links to the subject overview and to the page its kind
    needs; an auditor's to the overview only."""
    from django.test import Client
    from django.urls import reverse

    request = _create(customer, officer, kind=kind)
    request_verify(request=request, actor=officer, method="email")
    page = officer_client.get(_change_url(request)).content.decode()
    overview = reverse("admin:compliance_subject_overview", args=[customer.pk])
    action = reverse(f"admin:{url_name}", args=[customer.pk])
    assert f'<a href="{overview}" class="request-tool">' in page
    assert f'<a href="{action}?request={request.pk}" class="request-tool">{label}</a>' in page
    if kind != "restriction":  # the page names the request in its reason
        opened = officer_client.get(f"{action}?request={request.pk}").content.decode()
        assert f"Request #{request.pk}" in opened
    auditor_client = Client()
    auditor_client.force_login(auditor)
    seen = auditor_client.get(_change_url(request)).content.decode()
    assert overview in seen and action not in seen


def test_export_and_erasure_run_from_a_request_are_linked_to_it(officer_client, customer, officer):
    """Opened from a verified request's page, the export and erasure pages say which request
    they answer and record it; the request's page then links to both, and the erasure's
    ledger entry names the request. Before verification the same POSTs run nothing."""
    from compliance.models import ErasureCertificate, SubjectExport
    from compliance.selectors import erasure_plan

    access = _create(customer, officer, kind="access")
    export_url = reverse("admin:compliance_subject_export", args=[customer.pk])
    export_post = {"reason": f"Request #{access.pk}", "request": access.pk}
    officer_client.post(export_url, export_post)
    assert not SubjectExport.objects.exists()  # received, not verified: refused
    request_verify(request=access, actor=officer, method="email")
    page = officer_client.get(export_url, {"request": access.pk})
    assert f'name="request" value="{access.pk}"' in page.content.decode()
    assert "This export answers" in page.content.decode()
    response = officer_client.post(export_url, export_post)
    assert response.status_code == 302
    export = SubjectExport.objects.get()
    assert export.request == access

    erasure = _create(customer, officer, kind="erasure")
    erasure_url = reverse("admin:compliance_subject_erasure", args=[customer.pk])
    erasure_post = {
        "reason": f"Request #{erasure.pk}",
        "plan_hash": erasure_plan(customer).hash,
        "request": erasure.pk,
    }
    assert officer_client.post(erasure_url, erasure_post).status_code == 200
    assert not ErasureCertificate.objects.exists()  # received, not verified: refused
    request_verify(request=erasure, actor=officer, method="document")
    erasure_post["plan_hash"] = erasure_plan(customer).hash  # the request is in the plan
    assert (
        "This erasure answers"
        in officer_client.get(erasure_url, {"request": erasure.pk}).content.decode()
    )
    response = officer_client.post(erasure_url, erasure_post)
    assert response.status_code == 302
    certificate = ErasureCertificate.objects.get()
    assert certificate.request == erasure
    assert certificate.ledger_entry.details["request"] == erasure.pk

    assert f"Export #{export.pk}" in officer_client.get(_change_url(access)).content.decode()
    assert (
        f"Erasure certificate #{certificate.pk}"
        in officer_client.get(_change_url(erasure)).content.decode()
    )


def test_a_request_about_someone_else_is_refused_and_nothing_runs(
    officer_client, customer, officer
):
    """An export or erasure of one person cannot answer another person's request."""
    from compliance.models import ErasureCertificate, SubjectExport
    from compliance.services import ComplianceRefused, subject_erase, subject_export_queue

    bob = Customer.objects.create(email="bob@example.net", full_name="Bob")
    bobs = _create(bob, officer, kind="erasure")
    with pytest.raises(ComplianceRefused, match=f"Request #{bobs.pk} is about another"):
        subject_export_queue(subject=customer, actor=officer, reason="r", request=bobs)
    with pytest.raises(ComplianceRefused, match=f"Request #{bobs.pk} is about another"):
        subject_erase(subject=customer, actor=officer, reason="r", request=bobs)
    assert not SubjectExport.objects.exists() and not ErasureCertificate.objects.exists()
    assert Customer.objects.get(pk=customer.pk).email == "ada@example.org"

    response = officer_client.post(
        reverse("admin:compliance_subject_export", args=[customer.pk]),
        {"reason": "r", "request": bobs.pk},
        follow=True,
    )
    assert "is about another data subject" in response.content.decode()
    assert not SubjectExport.objects.exists()


@pytest.mark.parametrize(
    "kind, label, url_name",
    [
        ("access", "Run export", "compliance_subject_export"),
        ("erasure", "Preview erasure", "compliance_subject_erasure"),
    ],
)
def test_unverified_request_offers_no_export_or_erasure(
    officer_client, customer, officer, kind, label, url_name
):
    """A received request's page has no "Run export" or "Preview erasure"; once the
    identity is verified it has."""
    request = _create(customer, officer, kind=kind)
    action = reverse(f"admin:{url_name}", args=[customer.pk])
    page = officer_client.get(_change_url(request)).content.decode()
    assert action not in page and label not in page
    request_verify(request=request, actor=officer, method="email")
    page = officer_client.get(_change_url(request)).content.decode()
    assert f'<a href="{action}?request={request.pk}" class="request-tool">{label}</a>' in page


@pytest.mark.parametrize("named", ["abc", "99999", "1\x00", "unverified"])
def test_forged_post_naming_a_bad_request_is_refused_and_nothing_runs(
    officer_client, customer, officer, named
):
    """A POST to the export or erasure page naming an unknown, malformed or unverified
    request is refused with a message (a NUL byte: a 400 before any view runs); nothing
    runs, not even unlinked."""
    from compliance.models import ErasureCertificate, SubjectExport
    from compliance.selectors import erasure_plan

    unverified = _create(customer, officer)
    value = str(unverified.pk) if named == "unverified" else named
    ledgered = LedgerEntry.objects.count()
    export_url = reverse("admin:compliance_subject_export", args=[customer.pk])
    response = officer_client.post(export_url, {"reason": "r", "request": value}, follow=True)
    if "\x00" in value:
        assert response.status_code == 400
    else:
        assert response.status_code == 200
        shown = [str(m) for m in response.context["messages"]]
        assert any("request" in m.lower() for m in shown), shown
    erasure_url = reverse("admin:compliance_subject_erasure", args=[customer.pk])
    response = officer_client.post(
        erasure_url,
        {"reason": "r", "plan_hash": erasure_plan(customer).hash, "request": value},
    )
    if "\x00" in value:
        assert response.status_code == 400
    else:
        assert response.status_code == 200
        assert "request" in response.context["error"].lower()
    assert not SubjectExport.objects.exists() and not ErasureCertificate.objects.exists()
    assert Customer.objects.get(pk=customer.pk).email == customer.email
    assert LedgerEntry.objects.count() == ledgered


def test_request_page_shows_each_step_with_who_and_when(officer_client, customer, officer):
    """Received, verified, export written, started by that export, downloaded: each a row of
    the request's page with the officer and the time, read from the ledger."""
    from compliance.services import export_download, subject_export

    access = _create(customer, officer)
    request_verify(request=access, actor=officer, method="email")
    export = subject_export(subject=customer, actor=officer, reason="", request=access)
    export_download(export=export, actor=officer).close()
    page = officer_client.get(_change_url(access)).content.decode()
    steps = page[page.index("<th>When</th>") :]
    order = [
        "Received",
        "Identity verified",
        f"Export #{export.pk} written",
        f"Started (export #{export.pk} ready: awaiting delivery)",
        f"Export #{export.pk} downloaded",
    ]
    positions = [steps.index(f"<td>{label}</td><td>{officer.username}</td>") for label in order]
    assert positions == sorted(positions)
    assert timezone.localtime(export.finished_at).strftime("%Y-%m-%d %H:%M") in steps


# Delivery of the copy and messages to the requester -------------------------------------


def _center_request(customer, *, ip="198.51.100.7"):
    from compliance.services import request_verify

    request = request_create(subject=customer, kind="access", jurisdiction="gdpr", actor=None)
    SubjectRequest.objects.filter(pk=request.pk).update(
        contact_email="ada@example.org", channel=SubjectRequest.Channel.CENTER
    )
    request.refresh_from_db()
    request = request_verify(
        request=request,
        actor=None,
        method=SubjectRequest.VerificationMethod.EMAIL_CODE,
        note="Code entered in the privacy center.",
    )
    SubjectRequest.objects.filter(pk=request.pk).update(verified_ip=ip)  # as the center does
    request.refresh_from_db()
    return request


def _exported(customer, officer):
    from compliance.services import subject_export

    request = _center_request(customer)
    export = subject_export(subject=customer, actor=officer, reason="", request=request)
    request.refresh_from_db()
    return request, export


def test_page_shows_the_channel_and_the_verification_trail(officer_client, customer):
    """A request from the center shows its channel, method, when, and the IP."""
    request = _center_request(customer)
    page = officer_client.get(_change_url(request)).content.decode()
    assert "Privacy center" in page
    assert "Code sent to the email the requester gave" in page
    assert "198.51.100.7" in page
    assert f"{timezone.localtime(request.verified_at):%Y-%m-%d}" in page or "verified" in page
    listed = officer_client.get(reverse(CHANGELIST), {"channel": "center"}).content.decode()
    assert _change_url(request) in listed


@pytest.mark.django_db(transaction=True)
def test_officer_releases_the_copy_once_from_the_request_page(
    officer_client, customer, officer, smtp_inbox
):
    """The release button confirms, emails the link; a second release is a no-op warning."""
    request, export = _exported(customer, officer)
    url = _transition_url(request, "release")
    assert url in officer_client.get(_change_url(request)).content.decode()
    confirm = officer_client.get(url)
    assert confirm.status_code == 200 and b"fresh emailed code" in confirm.content
    response = officer_client.post(url, {"reason": ""}, follow=True)
    assert "released: the requester was emailed a link" in response.content.decode()
    assert len(smtp_inbox.messages) == 1
    page = officer_client.get(_change_url(request)).content.decode()
    assert url not in page  # released: no button
    assert "Copy released to the requester" in page
    again = officer_client.post(url, {"reason": ""}, follow=True).content.decode()
    assert "already released" in again and 'class="warning"' in again
    assert len(smtp_inbox.messages) == 1
    export.refresh_from_db()
    assert export.released_by == officer


def test_release_button_needs_the_release_permission(client, customer, officer):
    """An officer without the release permission sees no button and is refused."""
    from django.contrib.auth.models import Permission

    request, _ = _exported(customer, officer)
    officer.groups.clear()
    for codename in ("view_subjectrequest", "change_subjectrequest"):
        officer.user_permissions.add(Permission.objects.get(codename=codename))
    officer.is_staff = True
    officer.save()
    client.force_login(officer)
    url = _transition_url(request, "release")
    assert url not in client.get(_change_url(request)).content.decode()
    assert client.post(url, {"reason": ""}).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_awaiting_release_and_awaiting_download_filters(
    officer_client, customer, officer, smtp_inbox
):
    """Released copies move from "awaiting release" to "awaiting download"."""
    from compliance.services.delivery import request_release

    request, _ = _exported(customer, officer)
    other = _create(customer, officer)
    assert _listed(officer_client, delivery="awaiting_release") == [request.pk]
    assert _listed(officer_client, delivery="awaiting_download") == []
    request_release(request=request, actor=officer, absolute_url=str)
    assert _listed(officer_client, delivery="awaiting_release") == []
    assert _listed(officer_client, delivery="awaiting_download") == [request.pk]
    assert other.pk not in _listed(officer_client, delivery="awaiting_download")


@pytest.mark.django_db(transaction=True)
def test_officer_writes_to_the_requester_from_the_request_page(
    officer_client, customer, officer, smtp_inbox
):
    """The message form stores, emails and shows the message; the ledger has no text."""
    request = _center_request(customer)
    url = _transition_url(request, "message")
    assert url in officer_client.get(_change_url(request)).content.decode()
    text = "We found records in two systems.\nThe copy follows within a week."
    response = officer_client.post(url, {"body": text}, follow=True)
    assert "Message sent to the requester." in response.content.decode()
    (message,) = smtp_inbox.messages
    assert "two systems" in message.get_body(("plain",)).get_content()
    assert "two systems" not in message["Subject"]
    assert (
        "We found records in two systems."
        in officer_client.get(_change_url(request)).content.decode()
    )
    entry = LedgerEntry.objects.filter(action=LedgerAction.REQUEST).order_by("id").last()
    assert entry.details["transition"] == "message"
    assert "two systems" not in str(entry.details) + entry.reason


def test_message_form_refuses_an_empty_message(officer_client, customer):
    """An empty message is re-shown with what to do; nothing is stored."""
    request = _center_request(customer)
    response = officer_client.post(_transition_url(request, "message"), {"body": "  "})
    assert response.status_code == 200 and b"This field is required" in response.content
    assert not request.messages.exists()


def test_no_message_button_without_a_contact_address(officer_client, customer, officer):
    """A request recorded in the admin has no address: no message button, and a refusal."""
    request = _create(customer, officer)
    url = _transition_url(request, "message")
    assert url not in officer_client.get(_change_url(request)).content.decode()
    response = officer_client.post(url, {"body": "Hello"})
    assert b"no contact address" in response.content
