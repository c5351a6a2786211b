"""Micro-benchmarks against PostgreSQL: ``make bench`` (or ``python -m bench --help``).

Each benchmark is a module of this package listed in `BENCHMARKS`. A module provides:

- ``DESCRIPTION``: one line for ``--help``;
- ``setup_fixtures(config)``: create the rows it needs (idempotent; runs after migrate);
- ``run(config) -> list[harness.Result]``: measure; each result is a ratio, against a
  target or (target None) shown for context.

Modules are imported only after ``django.setup()``, so they may import models at the top.
Results are ratios between variants measured interleaved in the same process, never
absolute times: a PASS/OVER verdict compares the ratio with the module's target.
"""

# The registry: module names inside `bench`, run in this order.
BENCHMARKS: list[str] = [
    "history_save",
    "purge",
    "history_browser",
    "export",
    "erasure",
    "backup",
]
