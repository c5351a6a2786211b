"""Open a change context for every request: user, client IP, user agent, request id."""

import ipaddress
import re

from . import config
from .context import change_context, new_request_id

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
USER_AGENT_MAX = 512


def client_ip(request) -> str | None:
    """The client address: REMOTE_ADDR, or the hop our own proxies appended.

    Each trusted proxy appends the address it saw to X-Forwarded-For, so with N of them
    the client is the N-th entry from the right; anything further left is client-supplied.
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


class ChangeContextMiddleware:
    """Must come after AuthenticationMiddleware; echoes the request id as X-Request-ID."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Only our own proxy may name the request; a client could forge any id.
        incoming = request.headers.get("X-Request-ID", "") if config.trusted_proxy_count() else ""
        request_id = incoming if _REQUEST_ID.match(incoming) else new_request_id()
        with change_context(
            user=getattr(request, "user", None),
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:USER_AGENT_MAX],
            request_id=request_id,
        ):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
