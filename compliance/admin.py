"""Admin of the compliance app's models (the registry's rules on every admin are in
registry_admin.py; the inventory and subject pages are on the admin site, sites.py)."""
