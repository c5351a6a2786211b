"""The list of all changes: across models, filtered, keyset-paged, with field-level diffs."""

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from retention.models import LegalHold
from retention.services import hold_place
from shop.models import Customer, Message
from versions.context import change_context
from versions.selectors import ChangeFilter, changes_page, version_as_of

URL = "/admin/versions/changes/"


def _walk_all(flt, per_page):
    """Every page, following the cursor; the rows in order."""
    rows, after = [], ""
    while True:
        page, after = changes_page(flt, after=after, per_page=per_page)
        rows += page
        if after is None:
            return rows


def test_pages_follow_each_other_without_gaps_or_repeats(db, officer, customer):
    """Small pages across several history tables give every change once, newest first."""
    other = Customer.objects.create(email="bob@example.org", full_name="Bob")
    for n in range(4):
        customer.full_name = f"Ada {n}"
        customer.save()
        Message.objects.create(sender=other, recipient=customer, sender_name="B", body=str(n))
    hold_place(record=other, reason="claims", ground="art17_3_e", actor=officer)

    everything = _walk_all(ChangeFilter(), per_page=3)

    keys = [(c.model._meta.label, c.row.pk) for c in everything]
    assert len(keys) == len(set(keys)) == 1 + 1 + 4 + 4 + 1  # 2 created, 4 renames, 4 msgs, hold
    dates = [c.row.history_date for c in everything]
    assert dates == sorted(dates, reverse=True)


def test_filters_by_model_user_action_date_and_subject(db, officer, customer):
    """Each filter narrows the list to what it names."""
    other = Customer.objects.create(email="bob@example.org", full_name="Bob")
    with change_context(user=officer):
        customer.full_name = "Ada King"
        customer.save()
    Message.objects.create(sender=other, recipient=other, sender_name="B", body="self")

    by_user = _walk_all(ChangeFilter(user_id=officer.pk), 10)
    assert [(c.model, c.action) for c in by_user] == [(Customer, "changed")]
    assert {c.record_id for c in _walk_all(ChangeFilter(subject=other), 10)} == {
        other.pk,
        Message.objects.get().pk,
    }
    assert all(c.model is Message for c in _walk_all(ChangeFilter(model=Message), 10))
    assert len(_walk_all(ChangeFilter(action="~"), 10)) == 1
    later = timezone.now() + timedelta(days=1)
    assert _walk_all(ChangeFilter(since=later), 10) == []


def test_each_change_lists_its_fields_old_and_new(db, customer):
    """A change shows old -> new per changed field; a creation the values it set."""
    customer.full_name = "Ada King"
    customer.save()

    changed, created = _walk_all(ChangeFilter(model=Customer), 10)

    assert ("full_name", "Ada Lovelace", "Ada King") in [
        (d.field, d.old, d.new) for d in changed.changes
    ]
    assert ("email", None, "ada@example.org") in [(d.field, d.old, d.new) for d in created.changes]


def test_as_of_gives_the_version_in_force_then(db, customer):
    """The record as it was at a moment: before a change, the old version."""
    moment = timezone.now()
    customer.full_name = "Ada King"
    customer.save()
    assert version_as_of(Customer, customer.pk, moment).full_name == "Ada Lovelace"
    assert version_as_of(Customer, customer.pk, timezone.now()).full_name == "Ada King"
    assert version_as_of(Customer, customer.pk, moment - timedelta(days=1)) is None


def test_page_shows_changes_with_resolved_foreign_keys(officer_client, customer):
    """The admin page lists changes with who and diffs; foreign keys appear by name."""
    other = Customer.objects.create(email="bob@example.org", full_name="Bob")
    message = Message.objects.create(sender=other, recipient=other, sender_name="B", body="x")
    message.recipient = customer
    message.save()

    page = officer_client.get(URL).content.decode()

    assert "<td>shop.Message</td>" in page  # the model column, not only the filter's choice
    assert "Bob &lt;bob@example.org&gt;&nbsp;&rarr;&nbsp;Ada Lovelace" in page


def test_page_filters_and_refuses_unknown_input_clearly(officer_client, customer):
    """Unknown user or subject: the form says so, no traceback."""
    page = officer_client.get(URL, {"user": "nobody"}).content.decode()
    assert "No user has this username." in page
    page = officer_client.post(URL, {"subject": "nobody@example.org"}, follow=True).content.decode()
    assert "No data subject has this email or id." in page
    page = officer_client.post(URL, {"subject": customer.email}, follow=True).content.decode()
    assert "shop.Customer" in page


def test_auditor_reads_the_list_and_a_user_without_access_is_refused(
    auditor_client, customer, django_user_model
):
    """Auditors read all changes; staff without history permissions get 403."""
    assert auditor_client.get(URL).status_code == 200
    nobody = django_user_model.objects.create_user("nobody", password="x", is_staff=True)
    client = Client()
    client.force_login(nobody)
    assert client.get(URL).status_code == 403


def test_a_hold_change_is_listed_for_the_auditor(auditor_client, officer, customer):
    """Policy and hold changes are tracked changes too."""
    hold_place(record=customer, reason="claims", ground="art17_3_e", actor=officer)
    page = auditor_client.get(URL, {"model": "retention.LegalHold"}).content.decode()
    assert "retention.LegalHold" in page
    assert LegalHold.objects.count() == 1


def test_history_page_opens_the_version_as_of_a_moment(officer_client, customer):
    """?as_of= on a record's history opens the version in force then; before it existed,
    a message says so."""
    soon = timezone.localtime() + timedelta(seconds=1)
    moment = soon.replace(tzinfo=None).isoformat(timespec="seconds")
    first = customer.history.get()
    url = f"/admin/shop/customer/{customer.pk}/history/"

    response = officer_client.get(url, {"as_of": moment})
    assert response.status_code == 302
    assert response.url.endswith(f"/history/{first.pk}/")
    too_early = officer_client.get(url, {"as_of": "2000-01-01T00:00"}, follow=True)
    assert "did not exist at" in too_early.content.decode()
    malformed = officer_client.get(url, {"as_of": "yesterday"}, follow=True)
    assert "is not a date and time" in malformed.content.decode()


def test_next_page_link_carries_the_cursor_and_the_filters(officer_client, customer):
    """The "Older changes" link keeps the filters and its cursor survives the URL."""
    for n in range(60):
        customer.full_name = f"Ada {n}"
        customer.save()
    first = officer_client.get(URL, {"model": "shop.Customer"})
    next_url = first.context["next_url"]
    assert "model=shop.Customer" in next_url
    second = officer_client.get(URL + next_url)
    shown = {row["change"].row.pk for row in first.context["rows"]}
    more = {row["change"].row.pk for row in second.context["rows"]}
    assert len(shown) == 50 and len(more) == 11 and not shown & more
