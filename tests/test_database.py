"""The database the suite runs on is the one DATABASE_URL names (CI runs it on both)."""

import os

from django.db import connection

POSTGRES_SCHEMES = ("postgres://", "postgresql://", "pgsql://", "psql://")


def test_database_url_names_the_database_in_use(db):
    """A PostgreSQL DATABASE_URL means the tests really run on PostgreSQL, else on SQLite."""
    url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if url.startswith(POSTGRES_SCHEMES) else "sqlite"
    assert connection.vendor == expected, (
        f"DATABASE_URL={url!r} but the tests run on {connection.vendor}"
    )
