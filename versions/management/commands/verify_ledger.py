from django.core.management.base import CommandError

from versions.management.base import ComplianceCommand
from versions.services import ledger_verify


class Command(ComplianceCommand):
    help = (
        "Recompute the ledger's hash chain. Exits 0 when intact; otherwise exits 1 and names "
        "the first entry that was altered, deleted or inserted outside the application."
    )
    OK = "Ledger intact: {checked} entries verified. Head hash: {head}"
    BROKEN = "Ledger broken at entry #{entry}: {problem}. {checked} entries before it verified."

    def handle(self, *args, **options):
        report = ledger_verify()
        if not report.ok:
            raise CommandError(
                self.BROKEN.format(
                    entry=report.broken_id, problem=report.problem, checked=report.checked
                )
            )
        self.stdout.write(
            self.style.SUCCESS(self.OK.format(checked=report.checked, head=report.head))
        )
