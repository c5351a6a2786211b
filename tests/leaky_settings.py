"""Project settings plus an app whose personal fields are not in the registry."""

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.leaky"]
