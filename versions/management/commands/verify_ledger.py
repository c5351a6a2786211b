from django.core.management.base import CommandError

from versions.management.base import ComplianceCommand
from versions.services import ledger_verify


class Command(ComplianceCommand):
    help = (
        "Recompute the ledger's hash chain. Exits 0 when intact; otherwise exits 1 and names "
        "the first entry that was altered, deleted or inserted outside the application."
    )
    OK = "Ledger intact: {checked} verified. Head hash: {head}"
    BROKEN = "Ledger broken at entry #{entry}: {problem}. {checked} verified before it."
    TRUNCATED = "Ledger broken: {problem}. {checked} verified."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--expect-head",
            metavar="HASH",
            default="",
            help="A head hash printed by an earlier run and kept outside the database; it "
            "must still be in the chain (detects deleted newest entries).",
        )

    def handle(self, *args, expect_head, **options):
        report = ledger_verify(expect_head=expect_head)
        checked = f"{report.checked} entr{'y' if report.checked == 1 else 'ies'}"
        if not report.ok:
            template = self.TRUNCATED if report.broken_id is None else self.BROKEN
            raise CommandError(
                template.format(entry=report.broken_id, problem=report.problem, checked=checked)
            )
        self.stdout.write(self.style.SUCCESS(self.OK.format(checked=checked, head=report.head)))
