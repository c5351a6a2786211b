import sys
from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from tqdm import tqdm

from compliance.management.answering import add_request_argument, answered_request
from compliance.registry import registry
from compliance.selectors import SubjectAmbiguous, subject_find, subject_walk
from compliance.services import ComplianceRefused, subject_export
from versions.management.base import ComplianceCommand


class Command(ComplianceCommand):
    help = (
        "Export everything the personal-data registry finds about one data subject (GDPR "
        "Art. 15/20) to a ZIP of JSON and CSV files with manifest.json. SUBJECT is a primary "
        "key or an email. The export is recorded in the ledger."
    )
    UNKNOWN = "No data subject has the id or email {subject!r}: check it, or search the admin."
    NO_DIRECTORY = "The directory of {output} does not exist: create it or give another --output."
    IS_DIRECTORY = "{output} is a directory: give the path of the ZIP file to write."
    EXISTS = (
        "{output} exists already: give a new path, or --overwrite to replace it (an export "
        "holds personal data; check whose file you are replacing)."
    )
    DRY = "{model}: {rows} row(s), {history} history row(s)"
    DRY_DONE = "[dry run: nothing written]"
    DONE = "Wrote {output}: {files} file(s), {rows} row(s), {size} bytes, sha256 {sha256}"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("subject", help="The subject's primary key or email.")
        parser.add_argument(
            "--output", required=True, metavar="PATH", help="Where to write the ZIP file."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be exported; write nothing."
        )
        parser.add_argument(
            "--overwrite", action="store_true", help="Replace the file at --output if it exists."
        )
        add_request_argument(parser, what="export")

    def handle(self, *args, subject, output, dry_run, overwrite, request, **options):
        answered = answered_request(request)
        try:
            found = subject_find(subject)
        except SubjectAmbiguous as exc:
            raise CommandError(str(exc)) from exc
        if found is None:
            raise CommandError(self.UNKNOWN.format(subject=subject))
        path = Path(output)
        if path.is_dir():
            raise CommandError(self.IS_DIRECTORY.format(output=output))
        if not path.resolve().parent.is_dir():
            raise CommandError(self.NO_DIRECTORY.format(output=output))
        if path.exists() and not overwrite and not dry_run:
            raise CommandError(self.EXISTS.format(output=output))
        if dry_run:
            for walked in subject_walk(found):
                if walked.entry.exported:
                    history = walked.history.count() if walked.history is not None else 0
                    self.stdout.write(
                        self.DRY.format(
                            model=walked.entry.label, rows=walked.rows.count(), history=history
                        )
                    )
            self.stdout.write(self.DRY_DONE)
            return
        bar = tqdm(
            total=len(registry.entries()),
            unit="model",
            desc="export",
            disable=not sys.stderr.isatty(),
            file=sys.stderr,
        )
        try:
            export = subject_export(
                subject=found,
                actor=self.actor,
                reason=self.reason,
                output=path,
                request=answered,
                progress=lambda label, rows: (bar.set_postfix_str(label), bar.update()),
            )
        except (ComplianceRefused, PermissionDenied) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        self.stdout.write(
            self.DONE.format(
                output=output,
                files=2 * len(export.counts) + 1,
                rows=export.rows,
                size=export.size,
                sha256=export.sha256,
            )
        )
