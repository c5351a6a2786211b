"""The retention app holds no personal data: its records name policies, holds and runs."""

from compliance.registry import registry

from .models import RetentionPolicy

registry.declare_not_personal(RetentionPolicy, "name")
