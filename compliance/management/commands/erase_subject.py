from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from compliance.management.answering import add_request_argument, answered_request
from compliance.registry import registry
from compliance.selectors import SubjectAmbiguous, erasure_plan, subject_find, subject_gone
from compliance.services import ComplianceRefused, subject_erase
from versions.management.base import ComplianceCommand


class Command(ComplianceCommand):
    help = (
        "Erase a data subject (Art. 17): anonymise or delete each model's rows as the registry "
        "says, scrub their history rows, keep what a legal hold or legal ground keeps, and "
        "write a certificate and a ledger entry, in one transaction. SUBJECT is a primary key "
        "or an email. Shows the plan and asks for the subject's key unless --yes."
    )
    HEADER = "Erasure plan for {model} {pk} (plan {hash}):"
    GONE = "Its row is gone (deleted or purged): what history and other tables hold is erased."
    STEP = (
        "  {label}: {total} row(s), {action}: {to_change} to change, {kept} kept; "
        "history: {history_to_scrub} to scrub, {history_kept} kept"
    )
    KEPT = "    kept: {count} by {ground}"
    RESTRICTED = "  Restricted (Art. 18): {count} row(s) skipped."
    NOTHING = "  Nothing left to erase."
    DRY_RUN = "[dry run: nothing changed]"
    PROMPT = "Type the subject's key ({pk}) to erase: "
    NOT_CONFIRMED = "Not confirmed: nothing changed."
    DONE = "{message}"
    UNKNOWN = "No {model} with the key or email {identifier!r}: check it, or search the admin."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("subject", help="The subject's primary key or email.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Print the plan only; change nothing."
        )
        parser.add_argument(
            "--yes", action="store_true", help="Erase without asking for confirmation."
        )
        add_request_argument(parser, what="erasure")

    def handle(self, *args, subject, dry_run, yes, request, **options):
        answered = answered_request(request)
        found = self._find(subject)
        plan = erasure_plan(found)
        self._print_plan(found, plan)
        if dry_run:
            self.stdout.write(self.DRY_RUN)
            return
        if not self.reason.strip():
            raise CommandError(
                "Give the reason for the erasure with --reason (e.g. the request it answers)."
            )
        if not yes and self.confirm(self.PROMPT.format(pk=found.pk)) != str(found.pk):
            raise CommandError(self.NOT_CONFIRMED)
        try:
            result = subject_erase(
                subject=found,
                actor=self.actor,
                reason=self.reason,
                plan_hash=plan.hash,
                request=answered,
            )
        except (ComplianceRefused, PermissionDenied) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.DONE.format(message=result.message))

    def _find(self, identifier):
        try:
            found = subject_find(identifier)
        except SubjectAmbiguous as exc:
            raise CommandError(str(exc)) from exc
        if found is None:
            model = registry.subject_model()._meta.verbose_name
            raise CommandError(self.UNKNOWN.format(model=model, identifier=identifier))
        return found

    def _print_plan(self, subject, plan):
        write = self.stdout.write
        write(self.HEADER.format(model=plan.subject_model, pk=subject.pk, hash=plan.hash))
        if subject_gone(subject):
            write(self.GONE)
        for step in plan.steps:
            write(
                self.STEP.format(
                    label=step.label,
                    total=step.total,
                    action=step.action,
                    to_change=step.to_change,
                    kept=step.kept_total,
                    history_to_scrub=step.history_to_scrub,
                    history_kept=step.history_kept,
                )
            )
            for ground, count in step.kept.items():
                write(self.KEPT.format(count=count, ground=ground))
        if plan.restricted:
            write(self.RESTRICTED.format(count=plan.restricted))
        if not plan.changes:
            write(self.NOTHING)
