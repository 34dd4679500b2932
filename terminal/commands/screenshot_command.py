"""``screenshot OUT.png``: save a picture of the main window, with or without a display."""

from __future__ import annotations

import argparse
import os
from typing import Any

from terminal.cli import EXIT_OK, as_path
from terminal.core.errors import InvalidArgument
from terminal.core.model import Timeframe, normalize_symbol

DEFAULT_SIZE = "1600x900"


def register(commands: Any) -> None:
    """Add the ``screenshot`` command to the CLI's subparsers."""
    parser = commands.add_parser(
        "screenshot", help="save a PNG picture of the main window",
        description="Render the main window with the market history loaded and save it as a"
                    " PNG file. Works without a display (it renders offscreen).")
    parser.add_argument("output", metavar="OUT.png", help="the PNG file to write")
    parser.add_argument("--size", default=DEFAULT_SIZE, type=_size, metavar="WxH",
                        help=f"window size in pixels (default: {DEFAULT_SIZE})")
    parser.add_argument("--symbol", help="pair to chart, such as BTC/USDT (default: the first)")
    parser.add_argument("--timeframe", type=_timeframe, metavar="TF",
                        help="candle length: 1m, 5m, 15m, 30m, 1h, 4h or 1d (default: 5m)")
    parser.add_argument("--demo-orders", action="store_true",
                        help="place a few paper orders first (a buy, a partial sell, a resting"
                             " limit) so the trading panels have something to show; they are"
                             " real orders of this data folder's paper account")
    parser.set_defaults(run=run_screenshot)


def run_screenshot(args: argparse.Namespace) -> int:
    from terminal.app import display_available, save_screenshot

    # Qt reads the platform once, when the application is created: choose it before that.
    if not display_available():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    symbol = normalize_symbol(args.symbol) if args.symbol else None
    path = save_screenshot(as_path(args.output), data_dir=args.data_dir,
                           sim_speed=args.sim_speed, size=args.size, symbol=symbol,
                           timeframe=args.timeframe, demo_orders=args.demo_orders)
    print(path)
    return EXIT_OK


def _size(text: str) -> tuple[int, int]:
    width, separator, height = text.lower().partition("x")
    if separator and width.isdigit() and height.isdigit():
        size = int(width), int(height)
        if 320 <= size[0] <= 7680 and 240 <= size[1] <= 4320:
            return size
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a window size such as 1600x900 (320x240 to 7680x4320)")


def _timeframe(text: str) -> Timeframe:
    try:
        return Timeframe.parse(text)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(str(error)) from None
