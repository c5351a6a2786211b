import math

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.db.models import Q

from retention.models import RetentionPolicy
from retention.services import PolicyPending, RetentionRefused, policy_purge
from versions.management.base import ComplianceCommand


class Command(ComplianceCommand):
    help = (
        "Purge what the enabled retention policies say has expired, in batches, minus legal "
        "holds and exclusions; archive first where a policy says so. Each run is logged and "
        "recorded in the ledger. Exits 1 if a policy failed."
    )
    DRY = (
        "{policy}: {eligible} eligible, {held} held, {excluded} excluded, {batches} batch(es) "
        "[dry run: nothing changed]"
    )
    DONE = (
        "{policy}: {purged} purged, {archived} archived, {held} held, {excluded} excluded, "
        "{backlog} left ({status})"
    )
    FAILED = "{policy}: FAILED after {purged} purged: {error}"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--policy", metavar="NAME", help="Run only this policy.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; change nothing."
        )
        parser.add_argument("--batch-size", type=int, metavar="N", help="Rows per batch.")
        parser.add_argument(
            "--max-seconds",
            type=float,
            metavar="S",
            help="Stop each policy after S seconds; the next run resumes where it stopped.",
        )

    def handle(self, *args, policy, dry_run, batch_size, max_seconds, **options):
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if max_seconds is not None and not (math.isfinite(max_seconds) and max_seconds > 0):
            raise CommandError(
                "--max-seconds must be a positive number of seconds; leave it out for no budget."
            )
        # A new policy awaiting approval is named, so that it is seen skipped (policy_purge
        # refuses it); an approved one with a pending change runs its approved values.
        policies = RetentionPolicy.objects.filter(Q(enabled=True) | Q(pending_change__isnull=False))
        if policy:
            policies = RetentionPolicy.objects.filter(name=policy)
            if not policies:
                names = ", ".join(RetentionPolicy.objects.values_list("name", flat=True))
                raise CommandError(f"No policy named {policy!r}. Policies: {names or 'none'}.")
        failed = []
        for item in policies:
            try:
                run = policy_purge(
                    policy=item,
                    actor=self.actor,
                    reason=self.reason,
                    dry_run=dry_run,
                    batch_size=batch_size,
                    max_seconds=max_seconds,
                )
            except PolicyPending as exc:
                self.stdout.write(str(exc))
                continue
            except (RetentionRefused, PermissionDenied) as exc:
                failed.append(item.name)
                self.stderr.write(str(exc))
                continue
            values = {**vars(run), "policy": item.name, "status": run.get_status_display()}
            if run.status == run.Status.FAILED:
                failed.append(item.name)
                self.stderr.write(self.FAILED.format(**values))
            else:
                self.stdout.write((self.DRY if dry_run else self.DONE).format(**values))
        if failed:
            raise CommandError(f"Failed: {', '.join(failed)} (see the run log).")
