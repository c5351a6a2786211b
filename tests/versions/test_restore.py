"""Restoring a backup (with what outlives it and the erasure replay), and recovering one
table from a backup."""

import json
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, models

from compliance.models import ErasureCertificate, ErasureLogEntry
from compliance.services import subject_erase
from shop.models import Customer
from versions.backups import BackupError, manifest_path
from versions.models import LedgerAction, LedgerEntry
from versions.restore import SURVIVING_MODELS, backup_restore, table_recover
from versions.services import ledger_append, ledger_verify

pytestmark = pytest.mark.django_db(transaction=True)
REASON = "Restore drill"
SURVIVING_TABLES = {
    "versions_ledgerentry",
    "versions_ledgercheckpoint",
    "compliance_erasurecertificate",
    "compliance_erasurelogentry",
}


def _customers(*names):
    return [
        Customer.objects.create(email=f"{name}@example.org", name=name.capitalize())
        for name in names
    ]


def _counts():
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        counts = {}
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT count(*) FROM {quote(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


def _edit_manifest(path, **changes):
    target = manifest_path(path)
    manifest = json.loads(target.read_text())
    manifest.update(changes)
    target.write_text(json.dumps(manifest))
    return manifest


def test_surviving_models_are_the_ledger_and_the_erasure_log():
    """The rows that outlive a restore are named once, in foreign-key order."""
    assert SURVIVING_MODELS.index("versions.LedgerEntry") < SURVIVING_MODELS.index(
        "compliance.ErasureCertificate"
    ) < SURVIVING_MODELS.index("compliance.ErasureLogEntry")
    assert {m.split(".")[1].lower() for m in SURVIVING_MODELS} == {
        t.split("_", 1)[1] for t in SURVIVING_TABLES
    }


def test_round_trip_restores_every_table_row_count(make_backup):
    """Backup, change data, restore: every table has the manifest's row count again."""
    _customers("ada", "bob")
    path = make_backup()
    manifest = json.loads(manifest_path(path).read_text())
    _customers("cy", "dee")
    Customer.objects.filter(name="Ada").update(name="Changed")
    models.QuerySet.delete(Customer.all_objects.filter(name="Bob"))

    report = backup_restore(path=path, actor=None, reason=REASON)

    counts = _counts()
    for table, rows in manifest["tables"].items():
        if table not in SURVIVING_TABLES:
            assert counts[table] == rows, table
    assert sorted(Customer.all_objects.values_list("name", flat=True)) == ["Ada", "Bob"]
    assert report.tables == len(manifest["tables"])
    assert report.rows == sum(manifest["tables"].values())
    assert report.ledger_problem == ""
