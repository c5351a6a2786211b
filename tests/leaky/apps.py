from django.apps import AppConfig


class LeakyConfig(AppConfig):
    name = "tests.leaky"
    label = "leaky"
    default_auto_field = "django.db.models.BigAutoField"
