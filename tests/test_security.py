"""Nothing personal in URLs or logs (DESIGN.md contract 8), and a Content-Security-Policy on
every page: searches that carry an email go by POST or a short-lived token, access logs keep
the path without its query string."""

import io
import logging
import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from project.log_filters import PathOnlyFilter
from versions.search_tokens import SEARCH_TOKEN_PARAM

EMAIL = "ada@example.org"


def _urls(response) -> list[str]:
    """Every address a response leads to: its redirects, and the one it ends on."""
    return [url for url, _status in response.redirect_chain] + [response.request["PATH_INFO"]]


def test_subject_search_posts_the_email_and_lands_on_the_subjects_key(officer_client, customer):
    """The search form posts; the redirect names the subject by key, never by email."""
    search = reverse("admin:compliance_subject_search")
    page = officer_client.get(search)
    assert 'method="post"' in page.content.decode()
    found = officer_client.post(search, {"q": EMAIL}, follow=True)
    assert found.redirect_chain[-1][0] == reverse(
        "admin:compliance_subject_overview", args=[customer.pk]
    )
    assert all(EMAIL not in url and "%40" not in url for url in _urls(found))


def test_subject_search_by_get_searches_nothing(officer_client, customer):
    """An email in the address (an old link, a crafted one) is not searched for."""
    response = officer_client.get(reverse("admin:compliance_subject_search"), {"q": EMAIL})
    assert response.status_code == 200
    assert not response.context["form"].is_bound


def test_changes_filter_by_subject_carries_a_token_not_the_email(officer_client, customer):
    """The history browser's filter posts; the list and its pages carry a token only."""
    customer.full_name = "Ada King"
    customer.save()
    response = officer_client.post("/admin/versions/changes/", {"subject": EMAIL}, follow=True)
    (location, status), *_ = response.redirect_chain
    assert status == 302
    assert set(dict(p.split("=") for p in urlsplit(location).query.split("&"))) == {
        SEARCH_TOKEN_PARAM
    }
    assert EMAIL not in location and "%40" not in location
    assert response.context["rows"], "the token's search finds the subject's changes"
    assert {row["change"].row.history_id for row in response.context["rows"]} <= set(
        customer.history.values_list("history_id", flat=True)
    )
    links = re.findall(r'(?:href|action)="([^"]*)"', response.content.decode())
    assert links and not [link for link in links if EMAIL in link or "%40" in link]


def test_changes_filter_by_subject_in_the_address_filters_nothing(officer_client, customer):
    """`?subject=<email>` is not used: the officer is told to use the form."""
    response = officer_client.get("/admin/versions/changes/", {"subject": EMAIL})
    assert response.status_code == 200
    assert not response.context["form"].is_bound
    assert "never in the address" in response.content.decode()


def test_a_search_token_of_another_session_finds_nothing(officer_client, officer, customer):
    """A token is the officer's own: another session (a copied link) gets no search."""
    first = officer_client.post("/admin/versions/changes/", {"subject": EMAIL})
    other = Client()
    other.force_login(officer)
    response = other.get(first["Location"] if first["Location"].startswith("/") else
                         "/admin/versions/changes/" + first["Location"])  # fmt: skip
    assert not response.context["form"].is_bound
    assert "expired" in response.content.decode()


@pytest.mark.parametrize("logger", ["django.server", "django.request"])
def test_access_log_lines_keep_the_path_without_the_query_string(logger):
    """A logged request line loses its query string, where a search term would be."""
    record = logging.LogRecord(
        logger, logging.INFO, __file__, 1, '"%s" %s %s',
        ("GET /admin/compliance/subjects/?q=ada%40example.org HTTP/1.1", "200", "512"), None,
    )  # fmt: skip
    PathOnlyFilter().filter(record)
    assert record.getMessage() == '"GET /admin/compliance/subjects/ HTTP/1.1" 200 512'


@pytest.mark.parametrize("kind", ["status", "download", "preferences"])
@pytest.mark.parametrize("logger", ["django.server", "django.request"])
def test_access_log_lines_hide_the_token_of_a_privacy_center_link(logger, kind):
    """A privacy-center link's token opens a person's page: a logged line keeps the path's
    shape and loses the token, as a 404's "Not Found" line does."""
    token = "ChqOvsbuRrK80kBbIA1xtZgNi9t0-rHR5LHNS37-Z-Q"
    record = logging.LogRecord(
        logger, logging.INFO, __file__, 1, '"%s" %s %s',
        (f"GET /privacy/{kind}/{token}/ HTTP/1.1", "200", "512"), None,
    )  # fmt: skip
    PathOnlyFilter().filter(record)
    assert record.getMessage() == f'"GET /privacy/{kind}/…/ HTTP/1.1" 200 512'
    not_found = logging.LogRecord(
        logger, logging.WARNING, __file__, 1, "Not Found: %s", (f"/privacy/{kind}/{token}/",), None
    )
    PathOnlyFilter().filter(not_found)
    assert token not in not_found.getMessage()


def test_the_configured_access_log_is_filtered():
    """runserver's access log goes through the filter as configured in settings."""
    handlers = logging.getLogger("django.server").handlers
    (handler,) = [h for h in handlers if type(h) is logging.StreamHandler]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        logging.getLogger("django.server").info(
            '"%s" %s %s', "GET /admin/shop/customer/?q=ada%40example.org HTTP/1.1", "200", "1"
        )
    finally:
        handler.setStream(previous)
    assert "/admin/shop/customer/ HTTP/1.1" in stream.getvalue()
    assert "example.org" not in stream.getvalue()


@pytest.mark.parametrize(
    "url", ["/admin/", "/admin/login/", "/admin/no-such-page/", "/admin/versions/changes/"]
)
def test_every_page_carries_a_policy_that_runs_no_inline_script(admin_client, url):
    """The Content-Security-Policy header is on each page; scripts come from the site only."""
    response = admin_client.get(url)
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"


def test_a_list_search_carries_a_token_not_the_term(officer_client, customer):
    """The list's search box posts; the list, its filters and its pages carry a token."""
    other = customer.__class__.objects.create(email="bob@example.org", full_name="Bob Byron")
    url = reverse("admin:shop_customer_changelist")
    assert 'id="changelist-search" method="post"' in officer_client.get(url).content.decode()
    response = officer_client.post(url + "?o=1", {"q": EMAIL}, follow=True)
    (location, _status), *_ = response.redirect_chain
    assert EMAIL not in location and "%40" not in location and SEARCH_TOKEN_PARAM in location
    assert "o=1" in location, "the list's other parameters are kept"
    assert list(response.context["cl"].result_list) == [customer]
    assert other not in response.context["cl"].result_list
    links = re.findall(r'(?:href|action)="([^"]*)"', response.content.decode())
    assert not [link for link in links if EMAIL in link or "%40" in link]


def test_a_list_search_in_the_address_is_moved_to_a_token(officer_client, customer):
    """A `?q=` link is redirected to the token's address, and still finds the person."""
    url = reverse("admin:shop_customer_changelist")
    response = officer_client.get(url, {"q": EMAIL}, follow=True)
    assert all(EMAIL not in u and "%40" not in u for u, _ in response.redirect_chain)
    assert list(response.context["cl"].result_list) == [customer]
