import argparse
import json
import math
import textwrap
from dataclasses import asdict, fields

from django.core.management.base import CommandError, DjangoHelpFormatter
from django.db import connection

from operations import config
from operations.doctor import ACTION, CHECKS, OK, THRESHOLD_HELP, Thresholds, doctor_run
from versions.management.base import ComplianceCommand


class _Formatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the description and the list of checks kept as written."""


def _setting(name: str) -> str:
    return f"DOCTOR_{name.upper()}"


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _epilog() -> str:
    lines = ["checks:"]
    for check in CHECKS:
        text = check.description + (" PostgreSQL only." if check.postgres_only else "")
        lines.append(f"  {check.name}")
        lines.extend(textwrap.wrap(text, 92, initial_indent="      ", subsequent_indent="      "))
    lines += ["", "thresholds (option, setting, value now):"]
    for f in fields(Thresholds):
        value = config.doctor_threshold(_setting(f.name))
        lines.append(f"  {_option(f.name)}, {_setting(f.name)} = {value:,}")
        lines.append(f"      {THRESHOLD_HELP[f.name]}")
    lines += ["", "docs/doctor.md explains each finding and what to do about it."]
    return "\n".join(lines)


class Command(ComplianceCommand):
    help = (
        "Check the live database for what needs an operator: soft-delete tables without their\n"
        "partial index, dead rows, long transactions and lock waits (PostgreSQL), purges\n"
        "falling behind, backups, the ledger's verification, history growth. Prints one line\n"
        "per finding, then what to do for each that needs action. Read-only. Exits 1 when any\n"
        "finding needs action, else 0: run it from cron or a monitor."
    )
    HEADER = "Doctor: {checks} check(s) on the {vendor} database {name}"
    LINE = "{status:<8} {check:<20} {summary}"
    TODO = "What to do:"
    HEALTHY = "Nothing needs action."
    NEEDS_ACTION = "{count} finding(s) need action: {checks}."

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs.setdefault("epilog", _epilog())
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--json",
            dest="as_json",
            action="store_true",
            help="Print the findings as JSON (for machines).",
        )
        parser.add_argument(
            "--check",
            action="append",
            choices=[check.name for check in CHECKS],
            metavar="NAME",
            help="Run only this check (repeat for several); the names are listed below.",
        )
        for f in fields(Thresholds):
            parser.add_argument(
                _option(f.name),
                type=int if f.type in (int, "int") else float,
                metavar="N",
                help=f"{THRESHOLD_HELP[f.name]} (default: {_setting(f.name)}).",
            )

    def handle(self, *args, as_json: bool, check, **options):
        overrides = {f.name: options.get(f.name) for f in fields(Thresholds)}
        given = {k: v for k, v in overrides.items() if v is not None}
        # NaN compares false with everything and infinity never triggers: either silences
        # a check.
        endless = [_option(k) for k, v in given.items() if not math.isfinite(v)]
        if endless:
            raise CommandError(f"{', '.join(endless)} must be a finite number.", returncode=2)
        negative = [_option(k) for k, v in given.items() if v < 0]
        if negative:
            raise CommandError(f"{', '.join(negative)} cannot be negative.", returncode=2)
        thresholds = Thresholds.from_settings(**overrides)
        findings = doctor_run(thresholds=thresholds, names=check)
        actions = [f for f in findings if f.status == ACTION]
        if as_json:
            self._json(findings, thresholds, actions)
        else:
            self._report(findings, actions, checks=len(check or CHECKS))
        if actions:
            names = ", ".join(dict.fromkeys(f.check for f in actions))
            raise CommandError(
                self.NEEDS_ACTION.format(count=len(actions), checks=names), returncode=1
            )

    def _json(self, findings, thresholds, actions):
        report = {
            "database": {"vendor": connection.vendor, "name": _database_name()},
            "thresholds": asdict(thresholds),
            "action_needed": bool(actions),
            "findings": [f.as_dict() for f in findings],
        }
        self.stdout.write(json.dumps(report, indent=2, default=str))

    def _report(self, findings, actions, *, checks: int):
        self.stdout.write(
            self.HEADER.format(checks=checks, vendor=connection.vendor, name=_database_name())
        )
        styles = {OK: self.style.SUCCESS, ACTION: self.style.ERROR}
        for finding in findings:
            status = finding.status.upper() if finding.status == ACTION else finding.status
            line = self.LINE.format(status=status, check=finding.check, summary=finding.summary)
            self.stdout.write(styles.get(finding.status, str)(line))
        if not actions:
            self.stdout.write(self.HEALTHY)
            return
        self.stdout.write("\n" + self.TODO)
        for finding in actions:
            self.stdout.write(f"\n{finding.check}: {finding.summary}")
            self.stdout.write(
                textwrap.fill(finding.advice, 100, initial_indent="  ", subsequent_indent="  ")
            )


def _database_name() -> str:
    return str(connection.settings_dict["NAME"])
