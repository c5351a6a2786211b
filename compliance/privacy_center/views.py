"""The privacy center's pages: thin views over the compliance services."""

from django.template.response import TemplateResponse
from django.views.decorators.http import require_safe


@require_safe
def home(request):
    """What a person can do here: start a request or set their consent preferences."""
    return TemplateResponse(request, "privacy/home.html")
