"""Open a change context for every request: user, client IP, user agent, request id."""

import ipaddress
import re

from . import config
from .context import change_context, new_request_id

# What a proxy generates: nginx's $request_id (32 hex digits) or a canonical UUID.
_REQUEST_ID = re.compile(
    r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
USER_AGENT_MAX = 512


def client_ip(request) -> str | None:
    """The client address: REMOTE_ADDR, or the hop our own proxies appended.

    Each trusted proxy appends the address it saw to X-Forwarded-For, so with N of them
    the client is the N-th entry from the right; anything further left is client-supplied.
    This holds only while the application is reachable through those proxies alone: a
    client that reaches it directly sends its own X-Forwarded-For and so picks the address.
    """
    address = request.META.get("REMOTE_ADDR", "")
    proxies = config.trusted_proxy_count()
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        address = hops[-proxies] if len(hops) >= proxies else hops[0]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _proxy_request_id(request) -> str:
    """The proxy's X-Request-ID, when the proxy is declared to overwrite it and it is well formed.

    Proxies forward a client's headers unless told otherwise, so the header is trusted only
    under COMPLIANCE_PROXY_SETS_REQUEST_ID; even then only a proxy-made id is accepted.
    """
    if not config.proxy_sets_request_id():
        return ""
    incoming = request.headers.get("X-Request-ID", "")
    return incoming if _REQUEST_ID.fullmatch(incoming) else ""


class ChangeContextMiddleware:
    """Must come after AuthenticationMiddleware; echoes the request id as X-Request-ID."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = _proxy_request_id(request) or new_request_id()
        with change_context(
            user=getattr(request, "user", None),
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:USER_AGENT_MAX],
            request_id=request_id,
        ):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
