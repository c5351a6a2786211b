import argparse

from django.core.management.base import CommandError

from versions.ledger import HEAD_PATTERN, ledger_verify
from versions.management.base import ComplianceCommand


def _head_hash(value: str) -> str:
    """argparse type: a head hash as verify_ledger prints it (64 hex digits)."""
    value = value.strip().lower()
    if not HEAD_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a head hash: give the 64 hex digits verify_ledger printed"
        )
    return value


class Command(ComplianceCommand):
    help = (
        "Recompute the ledger's hash chain and sequence numbers and check that the heads "
        "recorded earlier (the checkpoints, every head anchored in LEDGER_HEAD_FILE, "
        "--expect-head) are still in it. Exits 0 when intact, recording the verified head; "
        "otherwise exits 1 and names the first entry that was altered, deleted or inserted "
        "outside the application, or the entries missing from the end."
    )
    OK = "Ledger intact: {checked} verified. Head: entry #{entry}, hash {head}"
    BROKEN = "Ledger broken at entry #{entry}: {problem}. {checked} verified before it."
    TRUNCATED = "Ledger broken: {problem}. {checked} verified."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--expect-head",
            metavar="HASH",
            type=_head_hash,
            help="A head hash printed by an earlier run (or logged by versions.ledger) and kept "
            "outside the database; it must still be in the chain.",
        )

    def handle(self, *args, expect_head, **options):
        try:  # call_command(expect_head=...) bypasses argparse's type
            expect_head = _head_hash(expect_head) if expect_head else ""
        except argparse.ArgumentTypeError as exc:
            raise CommandError(f"--expect-head: {exc}", returncode=2) from None
        report = ledger_verify(actor=self.actor, reason=self.reason, expect_head=expect_head)
        checked = f"{report.checked} entr{'y' if report.checked == 1 else 'ies'}"
        if not report.ok:
            template = self.TRUNCATED if report.broken_id is None else self.BROKEN
            raise CommandError(
                template.format(entry=report.broken_id, problem=report.problem, checked=checked)
            )
        self.stdout.write(
            self.style.SUCCESS(
                self.OK.format(checked=checked, entry=report.head_id, head=report.head)
            )
        )
