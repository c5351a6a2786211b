"""The base of the project's management commands: every run carries an actor and a reason."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from versions.context import change_context

__all__ = ["ComplianceCommand"]


class ComplianceCommand(BaseCommand):
    """Adds --actor and --reason and runs `handle` inside a change context.

    `handle` finds the acting user (--actor USERNAME, else None: the system) in
    ``self.actor`` and the reason in ``self.reason``, and passes both to the service it
    calls. History rows and ledger entries name "command:<name>" as their channel.
    """

    actor = None
    reason = ""

    def create_parser(self, prog_name, subcommand, **kwargs):
        self._command_name = subcommand
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "--actor",
            metavar="USERNAME",
            help="User on whose behalf the command acts (recorded in history and ledger).",
        )
        parser.add_argument(
            "--reason", default="", help="Why the command is run (recorded in history)."
        )

    def confirm(self, prompt: str) -> str:
        """The operator's answer to `prompt`; a closed input (cron, a pipe) is a clear error,
        not a traceback."""
        try:
            return input(prompt).strip()
        except EOFError:
            raise CommandError(
                "No answer: the input is closed (cron, a pipe). Run it again with --yes once "
                "you have read what it will do (--dry-run shows it)."
            ) from None

    def execute(self, *args, **options):
        user = None
        if options.get("actor"):
            user = get_user_model().objects.filter(username=options["actor"]).first()
            if user is None:
                raise CommandError(
                    f"Unknown user {options['actor']!r} for --actor: give an existing username."
                )
        self.actor, self.reason = user, options.get("reason") or ""
        name = getattr(self, "_command_name", None) or self.__module__.rsplit(".", 1)[-1]
        with change_context(user=user, channel=f"command:{name}", reason=self.reason):
            return super().execute(*args, **options)
