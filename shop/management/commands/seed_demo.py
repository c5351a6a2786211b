from django.core.management.base import CommandError

from shop.demo import DemoRefused, demo_seed, demo_users_ensure
from versions.management.base import ComplianceCommand


class Command(ComplianceCommand):
    help = (
        "Fill the database with deterministic demo data (customers with rows in every table, "
        "three years of dates, edits that leave history) and create the demo logins. "
        "Safe to re-run. Only with DEMO=true: the logins have published passwords."
    )
    PRESENT = "Demo data already present ({count} customers): nothing added."
    CREATED = "Created demo data: {summary}."
    LOGIN = "  {role:<16} {username} / {password}"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument(
            "--customers", type=int, default=200, help="Number of customers (default 200)."
        )
        parser.add_argument("--no-logins", action="store_true", help="Do not create logins.")

    def handle(self, *args, seed, customers, no_logins, **options):
        if customers < 2:
            raise CommandError("--customers must be at least 2 (messages need two people).")
        try:
            logins = [] if no_logins else demo_users_ensure()  # first: edits name the officer
            result = demo_seed(seed=seed, customers=customers, actor=self.actor, reason=self.reason)
        except DemoRefused as exc:
            raise CommandError(str(exc)) from exc
        if result.created:
            summary = ", ".join(f"{n} {label}" for label, n in result.counts.items())
            self.stdout.write(self.style.SUCCESS(self.CREATED.format(summary=summary)))
        else:
            self.stdout.write(self.PRESENT.format(count=result.counts["shop.Customer"]))
        if logins:
            self.stdout.write("Logins for http://127.0.0.1:8000/admin/ :")
            for login in logins:
                self.stdout.write(self.LOGIN.format(**vars(login)))
