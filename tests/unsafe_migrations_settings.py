"""Project settings plus an app with an unsafe migration, for the migration linter's test."""

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.unsafe_migrations"]
