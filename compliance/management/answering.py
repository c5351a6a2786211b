"""`--request N` of the export and erasure commands: the data-subject request they answer."""

from django.core.management.base import CommandError

from compliance.selectors import request_find


def add_request_argument(parser, *, what: str) -> None:
    parser.add_argument(
        "--request",
        metavar="N",
        help=f"The id of the data-subject request this {what} answers (recorded with it).",
    )


def answered_request(identifier):
    """The request `--request` names, None without one; a clear error for an unknown id."""
    if identifier is None:
        return None
    found = request_find(identifier)
    if found is None:
        raise CommandError(
            f"No data-subject request #{str(identifier).lstrip('#')}: give the id shown on "
            "the request's page in the admin."
        )
    return found
