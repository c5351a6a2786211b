from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from versions.management.base import ComplianceCommand
from versions.selectors import RestoreRefused, restore_preview, tracked_model
from versions.services import version_restore


class Command(ComplianceCommand):
    help = (
        "Restore a record to one of its versions: prints the preview (each field old -> new, "
        "missing foreign-key targets, unique clashes, personal data erased since, which is "
        "never restored), asks for confirmation, then saves the values as a new version with "
        "--reason and writes a ledger entry. --dry-run prints the preview only."
    )
    PREVIEW = "Restore {label} #{pk} to version #{version} ({when}):"
    CHANGE = "    {field}: {old!r} -> {new!r}"
    ERASED = "    {field}: erased since, left as it is"
    PROBLEM = "Cannot restore: {problem}"
    DRY_RUN = "Dry run: nothing changed."
    CONFIRM = "Type 'yes' to restore: "
    ABORTED = "Not restored."
    DONE = "Restored {label} #{pk} to version #{version}: {count} field(s) changed."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("model", metavar="APP_LABEL.MODEL", help="e.g. shop.Customer")
        parser.add_argument("pk", help="The record's primary key.")
        parser.add_argument("history_id", help="The version's id (see the history command).")
        parser.add_argument("--dry-run", action="store_true", help="Print the preview only.")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, **options):
        try:
            model = tracked_model(options["model"])
            pk = model._meta.pk.to_python(options["pk"])
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            raise CommandError(f"{options['pk']!r} is not a valid primary key.") from exc
        label = model._meta.label
        record = model._base_manager.filter(pk=pk).first()
        if record is None:
            raise CommandError(
                f"There is no {label} #{pk}: a deleted record is recovered, not restored."
            )
        if not options["dry_run"] and not self.reason.strip():
            raise CommandError("Give --reason: it is kept with the new version and the ledger.")
        try:
            preview = restore_preview(record, options["history_id"])
        except RestoreRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.PREVIEW.format(
                label=label,
                pk=pk,
                version=preview.version.pk,
                when=preview.version.history_date.strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
        for change in preview.changes:
            self.stdout.write(
                self.CHANGE.format(field=change.field, old=change.old, new=change.new)
            )
        for field in preview.erased:
            self.stdout.write(self.ERASED.format(field=field))
        if preview.problems:
            raise CommandError(self.PROBLEM.format(problem=" ".join(preview.problems)))
        if options["dry_run"]:
            self.stdout.write(self.DRY_RUN)
            return
        if not options["yes"] and self.confirm(self.CONFIRM).lower() != "yes":
            self.stdout.write(self.ABORTED)
            return
        try:
            version_restore(
                record=record,
                history_id=preview.version.pk,
                actor=self.actor,
                reason=self.reason,
                expected_latest=preview.latest_id,
            )
        except (RestoreRefused, PermissionDenied) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.DONE.format(
                label=label, pk=pk, version=preview.version.pk, count=len(preview.changes)
            )
        )
