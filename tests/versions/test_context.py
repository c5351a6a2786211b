"""The change context: nesting, the middleware, the client IP."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from versions.context import change_context, current
from versions.middleware import ChangeContextMiddleware, client_ip


def test_nested_context_inherits_what_it_does_not_set():
    """An inner context keeps the outer values it leaves empty."""
    with change_context(channel="command:x", reason="outer", ip="192.0.2.1"):
        with change_context(reason="inner", task_id=""):
            ctx = current()
            assert (ctx.channel, ctx.reason, ctx.ip) == ("command:x", "inner", "192.0.2.1")
        assert current().reason == "outer"
    assert current().reason == ""


def test_unknown_context_field_is_refused():
    """A typo in a field name is an error, not a silently lost value."""
    with (
        pytest.raises(TypeError, match="unknown change context fields: ipaddress"),
        change_context(ipaddress="192.0.2.1"),
    ):
        pass


def _through_middleware(**meta):
    seen = {}

    def view(request):
        seen["ctx"] = current()
        return HttpResponse("ok")

    response = ChangeContextMiddleware(view)(RequestFactory().get("/", **meta))
    return seen["ctx"], response


def test_middleware_opens_a_context_with_a_fresh_request_id():
    """Inside the view the context has IP, user agent and a request id sent back."""
    ctx, response = _through_middleware(
        REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT="UA/1", HTTP_X_REQUEST_ID="req-12345678"
    )
    assert ctx.ip == "198.51.100.7" and ctx.user_agent == "UA/1"
    assert ctx.request_id == response["X-Request-ID"] != "req-12345678"  # clients can't name it
    assert len(ctx.request_id) == 32
    assert current().request_id == ""


NGINX_ID = "0f3c9a6e2b7d4c1a8e5f6a7b8c9d0e1f"  # $request_id: 32 hex digits
UUID_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


@override_settings(COMPLIANCE_TRUSTED_PROXY_COUNT=1, COMPLIANCE_PROXY_SETS_REQUEST_ID=True)
@pytest.mark.parametrize("incoming", [NGINX_ID, UUID_ID])
def test_request_id_set_by_our_proxy_is_kept(incoming):
    """A proxy declared to overwrite X-Request-ID names the request: history meets its logs."""
    ctx, response = _through_middleware(HTTP_X_REQUEST_ID=incoming)
    assert ctx.request_id == response["X-Request-ID"] == incoming


@override_settings(COMPLIANCE_TRUSTED_PROXY_COUNT=1)
def test_request_id_is_generated_when_the_proxy_only_forwards_it():
    """A proxy count alone does not trust X-Request-ID: a proxy forwards the client's header."""
    ctx, response = _through_middleware(HTTP_X_REQUEST_ID=NGINX_ID)
    assert ctx.request_id == response["X-Request-ID"] != NGINX_ID
    assert len(ctx.request_id) == 32


@override_settings(COMPLIANCE_TRUSTED_PROXY_COUNT=0, COMPLIANCE_PROXY_SETS_REQUEST_ID=True)
def test_request_id_is_generated_without_a_proxy():
    """Without a proxy count there is no proxy to set the header: a client sent it."""
    ctx, _response = _through_middleware(HTTP_X_REQUEST_ID=NGINX_ID)
    assert ctx.request_id != NGINX_ID


@override_settings(COMPLIANCE_TRUSTED_PROXY_COUNT=1, COMPLIANCE_PROXY_SETS_REQUEST_ID=True)
@pytest.mark.parametrize(
    "incoming",
    [
        "<script>",
        "req-12345678",  # a token, but not what a proxy generates
        NGINX_ID.upper(),
        NGINX_ID + "0",
        UUID_ID.replace("-", "_"),
        f"{NGINX_ID}\n{NGINX_ID}",
    ],
)
def test_malformed_request_id_is_replaced(incoming):
    """Even from our proxy, only 32 hex digits or a canonical UUID are kept."""
    ctx, response = _through_middleware(HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == ctx.request_id != incoming
    assert len(ctx.request_id) == 32


def test_forwarded_for_is_ignored_without_trusted_proxies():
    """X-Forwarded-For is client-controlled: ignored unless proxies are configured."""
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert client_ip(request) == "10.0.0.1"


def test_a_client_reaching_the_application_directly_picks_its_address():
    """The documented limit: with a proxy count set, a request that bypasses the proxies
    records whatever X-Forwarded-For the client sent; only the network can prevent it."""
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="6.6.6.6")
    with override_settings(COMPLIANCE_TRUSTED_PROXY_COUNT=1):
        assert client_ip(request) == "6.6.6.6"


def test_client_is_the_hop_our_proxies_appended():
    """With N proxies the client is the N-th hop from the right; what the client sent is not."""
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9, 10.0.0.1"
    )
    with override_settings(COMPLIANCE_TRUSTED_PROXY_COUNT=1):
        assert client_ip(request) == "10.0.0.1"
    with override_settings(COMPLIANCE_TRUSTED_PROXY_COUNT=2):
        assert client_ip(request) == "203.0.113.9"


@override_settings(COMPLIANCE_TRUSTED_PROXY_COUNT=1)
def test_invalid_address_becomes_none():
    """A forged, invalid forwarded address is not stored."""
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="junk")
    assert client_ip(request) is None
