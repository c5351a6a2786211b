"""Models of the compliance app (consents and data-subject requests come here).

The module must exist even while empty: Django sends post_migrate, which keeps the
roles' permissions in sync, only to apps with a models module.
"""
