"""Admin of the compliance app. The inventory page lives on the admin site (sites.py)."""
