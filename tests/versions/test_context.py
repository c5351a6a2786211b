"""The change context: nesting, the middleware, the client IP."""

import pytest
from django.test import RequestFactory, override_settings

from versions.context import change_context, current
from versions.middleware import ChangeContextMiddleware, client_ip


def test_nested_context_inherits_what_it_does_not_set():
    """An inner context keeps the outer values it leaves empty."""
    with change_context(actor="command:x", reason="outer", ip="192.0.2.1"):
        with change_context(reason="inner", task_id=""):
            ctx = current()
            assert (ctx.actor, ctx.reason, ctx.ip) == ("command:x", "inner", "192.0.2.1")
        assert current().reason == "outer"
    assert current().reason == ""


def test_unknown_context_field_is_refused():
    """A typo in a field name is an error, not a silently lost value."""
    with (
        pytest.raises(TypeError, match="unknown change context fields: ipaddress"),
        change_context(ipaddress="192.0.2.1"),
    ):
        pass


def test_middleware_opens_a_context_and_echoes_the_request_id():
    """Inside the view the context has IP, user agent and the request id sent back."""
    seen = {}

    def view(request):
        seen["ctx"] = current()
        from django.http import HttpResponse

        return HttpResponse("ok")

    request = RequestFactory().get(
        "/", REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT="UA/1", HTTP_X_REQUEST_ID="req-12345678"
    )
    response = ChangeContextMiddleware(view)(request)
    assert seen["ctx"].ip == "198.51.100.7"
    assert seen["ctx"].user_agent == "UA/1"
    assert seen["ctx"].request_id == "req-12345678"
    assert response["X-Request-ID"] == "req-12345678"
    assert current().request_id == ""


def test_malformed_request_id_is_replaced():
    """A request id that is not a short token is replaced by a fresh one."""
    request = RequestFactory().get("/", HTTP_X_REQUEST_ID="<script>")
    response = ChangeContextMiddleware(lambda r: __import__("django.http").http.HttpResponse())(
        request
    )
    assert response["X-Request-ID"] != "<script>"
    assert len(response["X-Request-ID"]) == 32


def test_forwarded_for_is_ignored_unless_trusted():
    """X-Forwarded-For is client-controlled: used only behind a trusted proxy."""
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1"
    )
    assert client_ip(request) == "10.0.0.1"
    with override_settings(COMPLIANCE_TRUST_X_FORWARDED_FOR=True):
        assert client_ip(request) == "203.0.113.9"


def test_invalid_address_becomes_none():
    """A forged, invalid forwarded address is not stored."""
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="junk")
    with override_settings(COMPLIANCE_TRUST_X_FORWARDED_FOR=True):
        assert client_ip(request) is None
