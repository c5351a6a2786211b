"""Shared fixtures. Tests that need a service skip with a reason when it is missing,
except under COMPLIANCE_TEST_STRICT=1 (set by .ci/run), where a missing service fails."""

import os

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, connections

from compliance.roles import AUDITOR, OFFICER

STRICT = os.environ.get("COMPLIANCE_TEST_STRICT") == "1"


def unavailable(reason: str):
    """Skip the test, or fail it when the run requires every service."""
    if STRICT:
        pytest.fail(f"required in this run but unavailable: {reason}")
    pytest.skip(reason)


# On PostgreSQL a trigger refuses TRUNCATE of the ledger unless the database carries this
# setting (versions migration 0003 explains why); Django's test flush TRUNCATEs every table.
LEDGER_TRUNCATE_SETTING = "versions.ledger_truncate"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test databases, on which the test flush may TRUNCATE the ledger."""
    with django_db_blocker.unblock():
        for conn in connections.all():
            if conn.vendor == "postgresql":
                name = conn.ops.quote_name(conn.settings_dict["NAME"])
                with conn.cursor() as cursor:
                    cursor.execute(f"ALTER DATABASE {name} SET {LEDGER_TRUNCATE_SETTING} = 'allow'")


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path_factory):
    """Exports a test writes go to a directory of its own, never the project's var/exports
    (where they would be orphans the doctor reports)."""
    settings.COMPLIANCE_EXPORT_DIR = tmp_path_factory.mktemp("exports")


@pytest.fixture
def postgres(db):
    """Marks a test as PostgreSQL-only: skipped with a reason on SQLite."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://…")


def _member(username, group_name):
    user = get_user_model().objects.create_user(
        username=username, password=f"{username}-pass", is_staff=True
    )
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def officer(db):
    return _member("officer", OFFICER)


@pytest.fixture
def auditor(db):
    return _member("auditor", AUDITOR)


@pytest.fixture
def officer_client(client, officer):
    client.force_login(officer)
    return client


@pytest.fixture
def auditor_client(client, auditor):
    client.force_login(auditor)
    return client


@pytest.fixture
def customer(db):
    from shop.models import Customer

    return Customer.objects.create(
        email="ada@example.org", full_name="Ada Lovelace", phone="+44 20 7946 0001"
    )


class _Inbox:
    """What a real SMTP server (aiosmtpd) received: one parsed message per email."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        import email
        from email import policy

        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(message)
        return "250 OK"


@pytest.fixture
def smtp_inbox(settings):
    """A real SMTP server on a free local port; Django sends to it. Yields its inbox."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # a free port (aiosmtpd cannot start on port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield inbox
    finally:
        controller.stop()
