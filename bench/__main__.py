"""``python -m bench``: set up the bench database, run the registered benchmarks, report.

Exit status: 0 whenever the benchmarks ran (PASS or OVER alike: the numbers are for
people, not a gate), 2 when setup failed (PostgreSQL unreachable, migrate failed, a fixture
below its stated size, …). ``--setup-only`` builds the fixtures, says what each holds, and
stops.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import BENCHMARKS
from .harness import Config, SetupError, report, setup_django, summary

FULL = {"rounds": 21, "batch": 200, "warmup": 2}
QUICK = {"rounds": 5, "batch": 40, "warmup": 1}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Interleaved micro-benchmarks against PostgreSQL (DATABASE_URL, default "
            "postgres://postgres@127.0.0.1:5432/compliance_bench; the database is created "
            "if missing and migrated). Each benchmark reports ratios between variants, one "
            "against a target, and prints PASS or OVER; the exit status is 0 either way, "
            "2 if setup fails."
        ),
        epilog="benchmarks: " + ", ".join(BENCHMARKS),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            f"fast smoke run ({QUICK['rounds']} rounds x {QUICK['batch']} ops; "
            f"default {FULL['rounds']} x {FULL['batch']})"
        ),
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        metavar="NAME",
        help="run only this benchmark (repeatable); one of: " + ", ".join(BENCHMARKS),
    )
    parser.add_argument(
        "--setup-only",
        action="store_true",
        help="build and check the fixtures at this run's size, print what they hold, stop",
    )
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--batch", type=int, help="override the operations per batch")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preset = QUICK if args.quick else FULL
    config = Config(
        quick=args.quick,
        rounds=args.rounds or preset["rounds"],
        batch=args.batch or preset["batch"],
        warmup=preset["warmup"],
    )
    names = args.only or BENCHMARKS

    try:
        database = setup_django()
        modules = [importlib.import_module(f"{__package__}.{name}") for name in names]
        for module in modules:
            module.setup_fixtures(config)
        if args.setup_only:
            for name, module in zip(names, modules, strict=True):
                check = getattr(module, "check_fixtures", None)
                print(f"{name}: {check(config) if check else 'fixtures ready'}")
            return 0
    except SetupError as exc:
        print(f"bench: setup failed: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"bench: setup failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2

    mode = "quick" if config.quick else "full"
    print(f"bench ({mode}): {database}; {config.rounds} rounds, variants interleaved")
    results = []
    try:
        for module in modules:
            for result in module.run(config):
                report(result)
                results.append(result)
    except SetupError as exc:  # a fixture found below its size when its benchmark starts
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    summary(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
