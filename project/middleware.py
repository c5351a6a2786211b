"""Request-wide input rules that hold before any view runs."""

from django.core.exceptions import BadRequest

__all__ = ["NulCharacterMiddleware"]

NUL = "\x00"


class NulCharacterMiddleware:
    """A NUL character in the path, a query parameter or a posted form value is a 400.

    No text column stores it (PostgreSQL refuses it outright), no person types it, and
    refusing it here keeps every form, filter and action from having to. Uploaded files are
    not looked at: their bytes are theirs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if NUL in request.path_info or _has_nul(request.GET):
            raise BadRequest("The address holds a NUL character, which no field accepts.")
        if request.method == "POST" and _has_nul(request.POST):
            raise BadRequest("The form holds a NUL character, which no field accepts.")
        return self.get_response(request)


def _has_nul(query) -> bool:
    return any(NUL in key or any(NUL in v for v in values) for key, values in query.lists())
