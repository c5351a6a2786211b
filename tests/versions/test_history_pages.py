"""A record's history page and the list of all changes at scale: keyset pages, no counts,
a bounded number of queries, the same content as before."""

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from shop.models import Customer, Message
from versions.admin import HISTORY_PER_PAGE
from versions.selectors import ChangeFilter, changes_page

URL = "/admin/shop/customer/{pk}/history/"


def _versions_on(page) -> list[int]:
    return [int(v) for v in re.findall(r'/history/(\d+)/">\1</a>', page.content.decode())]


def _rename(customer, times):
    for n in range(times):
        customer.full_name = f"Ada {n}"
        customer.save()


def test_history_page_pages_by_keyset_without_gaps_repeats_or_count(officer_client, customer):
    """A long history comes in pages of HISTORY_PER_PAGE, newest first, linked by a cursor;
    together they hold every version once, and no query counts the history."""
    _rename(customer, HISTORY_PER_PAGE + 5)
    url = URL.format(pk=customer.pk)

    with CaptureQueriesContext(connection) as queries:
        first = officer_client.get(url)
    second = officer_client.get(url + first.context["next_url"])

    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
    shown = _versions_on(first) + _versions_on(second)
    newest_first = customer.history.order_by("-history_date", "-pk")
    everything = list(newest_first.values_list("pk", flat=True))
    assert len(_versions_on(first)) == HISTORY_PER_PAGE
    assert shown == everything
    assert second.context["next_url"] is None
    assert "Older versions" in first.content.decode()
    assert "Newest" in second.content.decode()


def test_history_page_last_row_of_a_page_shows_its_changes(officer_client, customer):
    """The oldest version on a full page still shows what it changed (the version before it
    is read with the page); the record's first version shows none."""
    _rename(customer, HISTORY_PER_PAGE + 1)
    url = URL.format(pk=customer.pk)

    first = officer_client.get(url).content.decode()
    last_row = first.split("<tr>")[-1]
    assert "<strong>Full name:</strong> Ada 0&nbsp;&rarr;&nbsp;Ada 1" in last_row
    older = officer_client.get(url + officer_client.get(url).context["next_url"])
    assert older.content.decode().count('<td class="history-changes"></td>') == 1


def test_history_page_queries_do_not_grow_with_the_page(officer_client, customer):
    """A page costs the same number of queries with two versions or a full page."""
    url = URL.format(pk=customer.pk)
    _rename(customer, 1)
    with CaptureQueriesContext(connection) as few:
        officer_client.get(url)
    _rename(customer, HISTORY_PER_PAGE + 3)
    with CaptureQueriesContext(connection) as many:
        officer_client.get(url)
    assert len(many) == len(few)


def test_history_page_shows_foreign_keys_by_name(officer_client, customer):
    """A foreign key that changed shows its old and new target by name."""
    other = Customer.objects.create(email="bob@example.org", full_name="Bob")
    message = Message.objects.create(sender=other, recipient=other, sender_name="B", body="x")
    message.recipient = customer
    message.save()

    page = officer_client.get(f"/admin/shop/message/{message.pk}/history/").content.decode()

    assert "Bob &lt;bob@example.org&gt;&nbsp;&rarr;&nbsp;Ada Lovelace" in page


def test_history_page_garbled_cursor_gives_the_first_page(officer_client, customer):
    """A cursor that does not parse shows the newest versions, not an error."""
    _rename(customer, 2)
    url = URL.format(pk=customer.pk)
    for cursor in ["nonsense", "2024-01-01|abc", "|", "2024-13-45T00:00|3"]:
        page = officer_client.get(url, {"before": cursor})
        assert page.status_code == 200
        assert _versions_on(page) == _versions_on(officer_client.get(url))


def test_list_of_all_changes_reads_keys_in_one_query_on_postgres(postgres, customer):
    """On PostgreSQL the newest rows of every history table are found in one query, however
    many tables there are: a page costs a few queries, not one per table."""
    _rename(customer, 3)
    with CaptureQueriesContext(connection) as queries:
        changes, _cursor = changes_page(ChangeFilter(), per_page=2)
    assert len(changes) == 2
    assert sum("UNION ALL" in q["sql"] for q in queries.captured_queries) == 1
    assert len(queries) <= 3  # keys, rows of the one table, their previous versions


def test_subject_page_of_changes_is_the_same_on_every_path(db, customer):
    """Changes about a subject follow each other page by page without gaps or repeats."""
    other = Customer.objects.create(email="bob@example.org", full_name="Bob")
    for n in range(3):
        Message.objects.create(sender=other, recipient=customer, sender_name="B", body=str(n))
        customer.full_name = f"Ada {n}"
        customer.save()
    rows, after = [], ""
    while True:
        page, after = changes_page(ChangeFilter(subject=customer), after=after, per_page=2)
        rows += page
        if after is None:
            break
    keys = [(c.model, c.row.pk) for c in rows]
    assert len(keys) == len(set(keys)) == 1 + 3 + 3  # created, 3 messages, 3 renames
    assert {m for m, _ in keys} == {Customer, Message}


def test_list_of_all_changes_writes_dates_and_links_as_the_template_did(officer_client, customer):
    """The "When" column reads as the date filter writes "j M Y" and "H:i:s", one line each,
    and each object links to its version's page."""
    from django.urls import reverse
    from django.utils import dateformat
    from django.utils.timezone import localtime

    version = customer.history.get()
    page = officer_client.get("/admin/versions/changes/", {"model": "shop.Customer"})

    html = page.content.decode()
    moment = localtime(version.history_date)
    day, time = dateformat.format(moment, "j M Y"), dateformat.format(moment, "H:i:s")
    assert f'<td class="nowrap">{day}<br>{time}</td>' in html
    url = reverse("admin:shop_customer_simple_history", args=[customer.pk, version.pk])
    assert f'<a href="{url}">#{customer.pk}</a>' in html
