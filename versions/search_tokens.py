"""Short-lived search tokens: a search that may carry personal data (an email, a name, a
phone) is posted, kept in the officer's session under a random token, and the page's address
carries only the token (DESIGN.md contract 8). Web-server and proxy logs, browser history and
Referer headers then never hold the term; the session row holds it until the token expires.
"""

import secrets
import time

__all__ = ["SEARCH_TOKEN_PARAM", "SEARCH_TOKEN_SECONDS", "search_token_load", "search_token_store"]

SEARCH_TOKEN_PARAM = "search"
SEARCH_TOKEN_SECONDS = 30 * 60
_SESSION_KEY = "search_tokens"
_MAX_TOKENS = 20


def search_token_store(request, data: dict[str, str | list[str]]) -> str:
    """Keep `data` (a search's fields) in the session; return the token that names it."""
    now = time.time()
    tokens = {
        token: entry
        for token, entry in request.session.get(_SESSION_KEY, {}).items()
        if entry["expires"] > now
    }
    token = secrets.token_urlsafe(12)
    tokens[token] = {"data": data, "expires": now + SEARCH_TOKEN_SECONDS}
    # The newest searches only: the session stays small whatever an officer does.
    newest = sorted(tokens.items(), key=lambda item: item[1]["expires"])[-_MAX_TOKENS:]
    request.session[_SESSION_KEY] = dict(newest)
    return token


def search_token_load(request, token: str) -> dict | None:
    """The search a token names, or None when it is unknown (another session) or expired."""
    entry = request.session.get(_SESSION_KEY, {}).get(token)
    if entry is None or entry["expires"] <= time.time():
        return None
    return entry["data"]
