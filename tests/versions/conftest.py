"""A backup as the `backup` command writes it (file and manifest), for the restore tests."""

import json
import sqlite3
import subprocess
from collections import defaultdict

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from versions.backups import MANIFEST_FORMAT, manifest_path, pg_environ
from versions.files import file_sha256


@pytest.fixture
def make_backup(tmp_path):
    """make_backup(tier="daily") -> the path of a backup of the test database now."""

    def make(tier: str = "daily"):
        stamp = timezone.now().strftime("%Y%m%dT%H%M%S%fZ")
        settings_dict = connection.settings_dict
        if connection.vendor == "postgresql":
            path = tmp_path / f"{stamp}-{tier}.dump"
            env = pg_environ(settings_dict)
            subprocess.run(["pg_dump", "-Fc", "-f", str(path)], env=env, check=True)
            tool = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True)
            server, dump_tool = str(connection.pg_version), tool.stdout.strip()
        else:
            path = tmp_path / f"{stamp}-{tier}.sqlite3"
            connection.ensure_connection()
            target = sqlite3.connect(path)
            connection.connection.backup(target)
            target.close()
            server, dump_tool = sqlite3.sqlite_version, "sqlite3 backup API"
        migrations = defaultdict(list)
        for app, name in sorted(MigrationRecorder(connection).applied_migrations()):
            migrations[app].append(name)
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            tables = {}
            for table in sorted(connection.introspection.table_names(cursor)):
                cursor.execute(f"SELECT count(*) FROM {quote(table)}")
                tables[table] = cursor.fetchone()[0]
        manifest = {
            "format": MANIFEST_FORMAT,
            "file": path.name,
            "vendor": connection.vendor,
            "database": str(settings_dict["NAME"]),
            "server_version": server,
            "dump_tool": dump_tool,
            "migrations": dict(migrations),
            "sha256": file_sha256(path),
            "size": path.stat().st_size,
            "tables": tables,
            "tier": tier,
            "created_at": timezone.now().isoformat(),
        }
        manifest_path(path).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return path

    return make
