from django.apps import AppConfig


class UnsafeMigrationsConfig(AppConfig):
    name = "tests.unsafe_migrations"
    label = "unsafe_migrations"
    default_auto_field = "django.db.models.BigAutoField"
