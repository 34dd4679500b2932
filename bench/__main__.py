"""Benchmarks: ``python -m bench [--data DIR] [--only SUITE ...] [--write-readme]``.

Each suite is a module of this package with a ``rows(data_dir)`` function that measures and
returns table rows; every figure is a median of several runs. ``make bench`` runs them all.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from pathlib import Path

from bench.common import DEFAULT_DATA, ROOT, Row

README = ROOT / "README.md"
MARK_START = "<!-- bench:start -->"
MARK_END = "<!-- bench:end -->"
#: Suite modules, in the order their rows appear in the README.
SUITES = ("store", "backtest", "trading", "exchange", "chart", "ml")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with the real candle files (default: ../shared/data)")
    parser.add_argument("--only", action="append", choices=SUITES, metavar="SUITE",
                        help=f"run only this suite (repeatable): {', '.join(SUITES)}")
    parser.add_argument("--write-readme", action="store_true",
                        help="replace the figures between the bench markers in README.md"
                             " (all suites only)")
    args = parser.parse_args()
    if args.write_readme and args.only:
        parser.error("--write-readme needs every suite; leave out --only")

    rows: list[Row] = []
    for name in args.only or SUITES:
        suite = importlib.import_module(f"bench.{name}")
        rows += suite.rows(args.data)
        print(f"{name}: done", file=sys.stderr)

    table = ["| benchmark | median | target |", "| --- | --- | --- |"]
    table += [f"| {name} | {value} | {target} |" for name, value, target in rows]
    machine = f"{platform.machine()}, Python {platform.python_version()}"
    text = "\n".join([*table, "", f"Measured on {time.strftime('%Y-%m-%d')} ({machine}, "
                      f"{os.cpu_count() or 1} cores) with `make bench`."])
    print(text)
    if args.write_readme:
        _write_readme(text)
    return 0


def _write_readme(text: str) -> None:
    content = README.read_text(encoding="utf-8")
    if MARK_START not in content or MARK_END not in content:
        raise SystemExit(f"README.md has no {MARK_START} ... {MARK_END} section")
    head, rest = content.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    README.write_text(f"{head}{MARK_START}\n{text}\n{MARK_END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
