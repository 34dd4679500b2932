"""Command line: ``python -m terminal`` opens the window; subcommands run without Qt.

Every subcommand reports failures as one line on stderr and a non-zero exit status; ``--json``
puts the machine-readable result on stdout and nothing else there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from terminal import __version__
from terminal.core.errors import TerminalError
from terminal.core.paths import APP_DISPLAY_NAME

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    from terminal.core.secrets import install_log_redaction

    install_log_redaction()
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command = getattr(args, "run", _run_window)
    try:
        return command(args)
    except TerminalError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of a text report stopped early (`... | head`): not an error.
        _silence_stdout()
        return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m terminal",
        description=f"{APP_DISPLAY_NAME}: charts, local forecasting models, backtests and trading."
                    " With no command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder holding the database (default: the user data folder)")
    parser.add_argument("--sim-speed", type=_positive_float, default=None, metavar="X",
                        help="simulated market speed: simulated seconds per real second")
    # Its own dest: the keys command's option of the same name would overwrite this one.
    parser.add_argument("--keys-from-env", dest="window_keys_from_env", action="store_true",
                        help="live trading in the window reads the exchange's API key from"
                             " TERMINAL_<EXCHANGE>_API_KEY / _SECRET / _PASSWORD for this run"
                             " (where the OS keyring cannot be used)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    from terminal.commands import (
        backtest_command,
        data_commands,
        download_command,
        evaluate_command,
        import_command,
        keys_command,
        model_commands,
        optimize_command,
        paper_command,
        screenshot_command,
        selfcheck_command,
    )

    for command in (import_command, data_commands, backtest_command, screenshot_command,
                    optimize_command, download_command, paper_command, keys_command,
                    evaluate_command, model_commands, selfcheck_command):
        command.register(commands)
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than zero")
    return value


def _run_window(args: argparse.Namespace) -> int:
    from terminal.app import run_window

    return run_window(data_dir=args.data_dir, sim_speed=args.sim_speed,
                      keys_from_env=args.window_keys_from_env)


def print_json(payload: dict[str, Any]) -> None:
    try:
        json.dump(payload, sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`... --json | head`).
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at devnull, so the interpreter's own flush at exit does not fail again
    on a pipe whose reader has gone."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILED


def as_path(text: str) -> Path:
    return Path(text).expanduser()
