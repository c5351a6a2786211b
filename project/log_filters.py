"""Logging filters: what reaches a log line never carries a query string (DESIGN.md
contract 8), since a query string can hold a search term: an email, a name, a phone; nor
the token of a privacy-center link (status, download, preferences), which opens a person's
page to whoever reads it."""

import logging
import re

__all__ = ["PathOnlyFilter", "without_query"]

# "GET /admin/x/?q=a%40b.c HTTP/1.1" -> "GET /admin/x/ HTTP/1.1"; a bare path likewise.
_QUERY = re.compile(r"\?[^\s\"]*")
# "/privacy/status/<token>/" -> "/privacy/status/…/": the privacy center's links by token.
_LINK_TOKEN = re.compile(r"(/privacy/(?:status|download|preferences)/)[^/\s\"?]+")


def without_query(text: str) -> str:
    """`text` with every query string cut from the paths in it, and every link token."""
    return _LINK_TOKEN.sub(r"\1…", _QUERY.sub("", text))


class PathOnlyFilter(logging.Filter):
    """Cut query strings from the request lines of access logs (`django.server`, which
    runserver writes) and from every request path a record names."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                without_query(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str) and record.name in ("django.server", "django.request"):
            record.msg = without_query(record.msg)
        return True
