from django.conf import settings


def demo(request):
    """Tell templates whether this is the demo (published logins, built-in key)."""
    return {"DEMO": settings.DEMO}
