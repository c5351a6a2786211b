from django.core.management.base import CommandError
from django.utils import timezone

from versions.management.base import ComplianceCommand
from versions.selectors import record_versions, tracked_model


class Command(ComplianceCommand):
    help = (
        "Print a record's versions, oldest first: when, what (created, changed, deleted), "
        "who, from where, through which channel and why, and each changed field as "
        "old -> new. Works for deleted records too. Read-only."
    )
    HEADER = "{label} #{pk}: {count} version(s)"
    VERSION = "#{id}  {when}  {action}  by {who}{where}{channel}{reason}"
    CHANGE = "    {field}: {old!r} -> {new!r}"
    NONE = "{label} #{pk} has no versions: check the model and the primary key."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("model", metavar="APP_LABEL.MODEL", help="e.g. shop.Customer")
        parser.add_argument("pk", help="The record's primary key.")

    def handle(self, *args, **options):
        try:
            model = tracked_model(options["model"])
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        try:
            pk = model._meta.pk.to_python(options["pk"])
        except Exception as exc:
            raise CommandError(f"{options['pk']!r} is not a valid primary key.") from exc
        versions = record_versions(model, pk)
        label = model._meta.label
        if not versions:
            raise CommandError(self.NONE.format(label=label, pk=pk))
        self.stdout.write(self.HEADER.format(label=label, pk=pk, count=len(versions)))
        for version in versions:
            row = version.row
            self.stdout.write(
                self.VERSION.format(
                    id=row.history_id,
                    when=timezone.localtime(row.history_date).strftime("%Y-%m-%d %H:%M:%S"),
                    action=version.action,
                    who=_who(row),
                    where=f" from {row.history_ip}" if getattr(row, "history_ip", None) else "",
                    channel=f" via {row.history_channel}"
                    if getattr(row, "history_channel", "")
                    else "",
                    reason=f": {row.history_change_reason}" if row.history_change_reason else "",
                )
            )
            for change in version.changes:
                self.stdout.write(
                    self.CHANGE.format(field=change.field, old=change.old, new=change.new)
                )


def _who(row) -> str:
    if row.history_user_id is None:
        return "the system"
    user = row.history_user
    return user.get_username() if user is not None else f"user #{row.history_user_id}"
