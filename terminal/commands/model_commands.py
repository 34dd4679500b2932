"""``train`` and ``models``: train and register forecasting models, list, activate, compare,
roll back, and allow a model without proven skill to trade.

``train`` evaluates the architecture walk-forward on the history (every figure out of sample),
then fits it on the whole history and registers it with those figures and its verdict.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from terminal.cli import EXIT_OK, print_json
from terminal.commands.candle_source import (
    DEFAULT_VENUE,
    add_source_arguments,
    data_json,
    load_candles,
)
from terminal.commands.evaluate_command import (
    add_training_arguments,
    limit_threads,
    model_options,
    parse_fraction,
    parse_whole,
)
from terminal.core.errors import InvalidArgument
from terminal.core.forecasts import ModelRecord, RetrainSchedule
from terminal.core.model import Timeframe, normalize_symbol
from terminal.core.series import SeriesKey
from terminal.core.timefmt import format_ms


def register(commands: Any) -> None:
    """Add ``train`` and ``models`` to the CLI's subparsers."""
    train = commands.add_parser(
        "train", help="train, evaluate and register a forecasting model",
        description="Evaluate a model walk-forward on the history, fit it on all of it and"
                    " register it with its out-of-sample figures and skill verdict.")
    add_source_arguments(train)
    train.add_argument("--model", required=True, help="ridge, drift, lstm, gru, bilstm,"
                       " cnn_lstm or transformer")
    add_training_arguments(train)
    train.add_argument("--refit-every", default="2880", metavar="K", help="refit every K bars"
                       " in the evaluation (default 2880)")
    train.add_argument("--test-fraction", default="0.3", help="share of the history the"
                       " evaluation tests on (default 0.3)")
    train.add_argument("--for-venue", metavar="VENUE", help="venue the model forecasts for"
                       f" (default: the stored venue read, else {DEFAULT_VENUE})")
    train.add_argument("--activate", action="store_true", help="make it the active model of"
                       " its series")
    train.add_argument("--json", action="store_true", help="print one JSON object")
    train.set_defaults(run=run_train)

    forecast = commands.add_parser(
        "forecast", help="forecast from the last candle with a registered model",
        description="Forecast every horizon from the last candle with the series' active model"
                    " (or --model-id), shown with the model's out-of-sample verdict.")
    add_source_arguments(forecast)
    forecast.add_argument("--model-id", metavar="ID", help="registered model to use (default:"
                          " the active model of the series)")
    forecast.add_argument("--for-venue", metavar="VENUE", help="venue whose active model to"
                          f" use (default: the stored venue read, else {DEFAULT_VENUE})")
    forecast.add_argument("--json", action="store_true", help="print one JSON object")
    forecast.set_defaults(run=run_forecast)

    models = commands.add_parser("models", help="list, activate, compare or roll back models")
    actions = models.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="registered models, newest first")
    _series_arguments(listing, required=False)
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(run=run_list)
    activate = actions.add_parser("activate", help="make a model its series' active model")
    activate.add_argument("id", help="model id (see `models list`)")
    activate.add_argument("--json", action="store_true", help="print one JSON object")
    activate.set_defaults(run=run_activate)
    rollback = actions.add_parser("rollback", help="reactivate the previously active model")
    _series_arguments(rollback, required=True)
    rollback.add_argument("--json", action="store_true", help="print one JSON object")
    rollback.set_defaults(run=run_rollback)
    override = actions.add_parser("override", help="allow (on) or forbid (off) automated"
                                  " trading on a model without proven skill")
    override.add_argument("id", help="model id")
    override.add_argument("state", choices=("on", "off"))
    override.add_argument("--json", action="store_true", help="print one JSON object")
    override.set_defaults(run=run_override)
    compare = actions.add_parser("compare", help="the figures of several models side by side")
    compare.add_argument("ids", nargs="+", help="model ids")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    compare.set_defaults(run=run_compare)
    schedule = actions.add_parser("schedule", help="retrain a model daily or every N candles"
                                  " (the window runs the schedules)")
    _series_arguments(schedule, required=True)
    schedule.add_argument("--model", required=True, help="architecture to retrain")
    when = schedule.add_mutually_exclusive_group(required=True)
    when.add_argument("--daily", metavar="HH:MM", help="every day at this UTC time")
    when.add_argument("--every-candles", metavar="N", help="after every N closed candles")
    schedule.add_argument("--refresh-data", action="store_true", help="fetch new candles"
                          " before retraining")
    schedule.add_argument("--json", action="store_true", help="print one JSON object")
    schedule.set_defaults(run=run_schedule)
    schedules = actions.add_parser("schedules", help="the stored retraining schedules")
    schedules.add_argument("--json", action="store_true", help="print one JSON object")
    schedules.set_defaults(run=run_schedules)
    unschedule = actions.add_parser("unschedule", help="delete a retraining schedule")
    unschedule.add_argument("id", help="schedule id (see `models schedules`)")
    unschedule.set_defaults(run=run_unschedule)


def _series_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--symbol", required=required, help="pair such as BTC/USDT")
    parser.add_argument("--timeframe", required=required, help="candle length such as 1h")
    parser.add_argument("--venue", help=f"venue (default: {DEFAULT_VENUE})")


def run_train(args: argparse.Namespace) -> int:
    from terminal.core.paths import resolve_data_dir
    from terminal.core.storage import Store
    from terminal.ml.catalog import parse_horizons, parse_model_names
    from terminal.ml.registry import ModelRegistry
    from terminal.ml.training import train_and_register

    (architecture,) = parse_model_names(args.model)
    horizons = parse_horizons(args.horizons)
    epochs, threads = model_options(args)
    refit_every = parse_whole(args.refit_every, "--refit-every", 1, 10_000_000)
    test_fraction = parse_fraction(args.test_fraction, "--test-fraction")
    data = load_candles(args)
    venue = (args.for_venue or data.source.get("venue") or DEFAULT_VENUE).strip().lower()
    key = SeriesKey(venue, data.symbol, data.series.timeframe)
    limit_threads(threads)
    data_dir = resolve_data_dir(args.data_dir)

    def report_epoch(progress: Any) -> bool:
        if not args.json:
            print(f"  epoch {progress.epoch}/{progress.epochs}: loss {progress.train_loss:.4f},"
                  f" validation {progress.validation_loss:.4f}, ETA"
                  f" {progress.eta_seconds:.0f} s", file=sys.stderr)
        return True

    def report_stage(stage: str) -> None:
        if not args.json:
            print(stage, file=sys.stderr)

    with Store.open(data_dir) as store:
        outcome = train_and_register(
            ModelRegistry(store, data_dir), key, data.series, architecture, horizons,
            epochs=epochs, test_fraction=test_fraction, refit_every=refit_every,
            activate=args.activate, on_epoch=report_epoch, on_stage=report_stage)
    record = outcome.record
    if args.json:
        print_json({**data_json(data), "model": _record_json(record)})
    else:
        print(f"registered model {record.id}: {record.architecture} for {record.key},"
              f" trained {format_ms(record.train_start)} to {format_ms(record.train_end)}"
              f"{' (active)' if record.active else ''}")
        _print_metrics(record)
    return EXIT_OK


def run_forecast(args: argparse.Namespace) -> int:
    from terminal.core.forecasts import forecast_path
    from terminal.core.paths import resolve_data_dir
    from terminal.core.storage import Store
    from terminal.ml.inference import predict_latest
    from terminal.ml.registry import ModelRegistry

    data = load_candles(args)
    venue = (args.for_venue or data.source.get("venue") or DEFAULT_VENUE).strip().lower()
    key = SeriesKey(venue, data.symbol, data.series.timeframe)
    data_dir = resolve_data_dir(args.data_dir)
    with Store.open(data_dir) as store:
        if args.model_id is not None:
            record = store.forecasts.get(_model_id(args.model_id))
        else:
            active = store.forecasts.active(key)
            if active is None:
                raise InvalidArgument(f"{key} has no active model; `models activate ID` or give"
                                      " --model-id")
            record = active
        model = ModelRegistry(store, data_dir).load(record)
    predictions = predict_latest(model, record, data.series, int(time.time() * 1000))
    last_close = float(data.series.close[-1])
    path = forecast_path(last_close, predictions)[1:]
    verdicts = [str(record.metrics.get(str(p.horizon_bars), {}).get("verdict", "not evaluated"))
                for p in predictions]
    if args.json:
        print_json({"model": _record_json(record), "last_close": last_close,
                    "made_from_utc": format_ms(predictions[0].made_from),
                    "forecasts": [{"horizon": p.horizon_bars,
                                   "expected_return": p.expected_return,
                                   "quantile_10": p.quantile_10, "quantile_50": p.quantile_50,
                                   "quantile_90": p.quantile_90, "prob_up": p.prob_up,
                                   "expected_price": point.expected, "price_10": point.low,
                                   "price_90": point.high, "verdict": verdict}
                                  for p, point, verdict in zip(predictions, path, verdicts,
                                                               strict=True)]})
        return EXIT_OK
    print(f"model {record.id} ({record.architecture}) for {key}, from the candle of"
          f" {format_ms(predictions[0].made_from)} (close {last_close:,.2f})"
          f"{'' if record.usable_for_trading else '; not used for automated trading'}")
    for p, point, verdict in zip(predictions, path, verdicts, strict=True):
        direction = "up" if p.prob_up >= 0.5 else "down"
        odds = max(p.prob_up, 1 - p.prob_up) * 100
        print(f"  {p.horizon_bars:>3} bars: {direction} {odds:.0f} %,"
              f" expected {p.expected_return * 100:+.2f} % ({point.expected:,.2f}), 10-90 %"
              f" {point.low:,.2f} to {point.high:,.2f}; {verdict}")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    key = _optional_key(args)
    with _store(args) as store:
        records = store.forecasts.models(key)
    if args.json:
        print_json({"models": [_record_json(r) for r in records]})
        return EXIT_OK
    if not records:
        print("no models registered; `train` makes one")
        return EXIT_OK
    print(f"{'id':>4}  {'active':<6} {'model':<12}{'series':<28}{'trained to':<22}verdict")
    for record in records:
        flag = "yes" if record.active else ""
        trading = " (trading override)" if record.trading_override else ""
        print(f"{record.id:>4}  {flag:<6} {record.architecture:<12}{record.key!s:<28}"
              f"{format_ms(record.train_end):<22}{record.verdict}{trading}")
    return EXIT_OK


def run_activate(args: argparse.Namespace) -> int:
    from terminal.core.paths import resolve_data_dir
    from terminal.ml.registry import ModelRegistry

    model_id = _model_id(args.id)
    with _store(args) as store:
        registry = ModelRegistry(store, resolve_data_dir(args.data_dir))
        record = registry.activate(model_id, int(time.time() * 1000))
    return _report(args, record, "active")


def run_rollback(args: argparse.Namespace) -> int:
    key = _optional_key(args)
    assert key is not None
    with _store(args) as store:
        record = store.forecasts.rollback(key)
    return _report(args, record, "active again")


def run_override(args: argparse.Namespace) -> int:
    with _store(args) as store:
        record = store.forecasts.set_trading_override(_model_id(args.id), args.state == "on")
    state = ("allowed to trade despite its verdict" if record.trading_override
             else "used for automated trading only with proven skill")
    return _report(args, record, state)


def run_compare(args: argparse.Namespace) -> int:
    ids = [_model_id(text) for text in args.ids]
    with _store(args) as store:
        records = [store.forecasts.get(model_id) for model_id in ids]
    if args.json:
        print_json({"models": [_record_json(r) for r in records]})
        return EXIT_OK
    for record in records:
        print(f"model {record.id}: {record.architecture} for {record.key}"
              f"{' (active)' if record.active else ''}")
        _print_metrics(record)
    return EXIT_OK


def run_schedule(args: argparse.Namespace) -> int:
    from terminal.ml.catalog import check_trainable, parse_model_names

    (architecture,) = parse_model_names(args.model)
    check_trainable(architecture)
    key = _optional_key(args)
    assert key is not None
    every = (None if args.every_candles is None
             else parse_whole(args.every_candles, "--every-candles", 1, 1_000_000))
    with _store(args) as store:
        schedule = store.forecasts.save_schedule(key, architecture, daily_at=args.daily,
                                                 every_candles=every,
                                                 refresh_data=args.refresh_data)
    if args.json:
        print_json({"schedule": _schedule_json(schedule)})
    else:
        print(f"schedule {schedule.id}: {_describe_schedule(schedule)}")
    return EXIT_OK


def run_schedules(args: argparse.Namespace) -> int:
    with _store(args) as store:
        schedules = store.forecasts.schedules()
    if args.json:
        print_json({"schedules": [_schedule_json(s) for s in schedules]})
    elif not schedules:
        print("no retraining schedules; `models schedule` adds one")
    for schedule in [] if args.json else schedules:
        print(f"{schedule.id:>4}  {_describe_schedule(schedule)}")
    return EXIT_OK


def run_unschedule(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.forecasts.delete_schedule(_model_id(args.id, "a schedule id"))
    print(f"schedule {args.id} deleted")
    return EXIT_OK


def _describe_schedule(schedule: RetrainSchedule) -> str:
    when = (f"daily at {schedule.daily_at} UTC" if schedule.daily_at
            else f"every {schedule.every_candles} closed candles")
    last = "never run" if schedule.last_run_at is None else (
        f"last run {format_ms(schedule.last_run_at)}")
    refresh = ", data refreshed first" if schedule.refresh_data else ""
    return f"retrain {schedule.architecture} on {schedule.key} {when}{refresh}; {last}"


def _schedule_json(schedule: RetrainSchedule) -> dict[str, Any]:
    return {"id": schedule.id, "venue": schedule.key.venue, "symbol": schedule.key.symbol,
            "timeframe": schedule.key.timeframe.code, "architecture": schedule.architecture,
            "daily_at": schedule.daily_at, "every_candles": schedule.every_candles,
            "refresh_data": schedule.refresh_data, "enabled": schedule.enabled,
            "last_run_utc": None if schedule.last_run_at is None
            else format_ms(schedule.last_run_at)}


def _report(args: argparse.Namespace, record: ModelRecord, state: str) -> int:
    if args.json:
        print_json({"model": _record_json(record)})
    else:
        print(f"model {record.id} ({record.architecture}, {record.key}) is {state}:"
              f" {record.verdict}")
    return EXIT_OK


def _print_metrics(record: ModelRecord) -> None:
    for horizon, figures in record.metrics.items():
        ci = figures.get("dir_acc_ci") or [0, 0]
        p = figures.get("dm_pvalue")
        print(f"  {horizon:>3} bars: MASE {figures['mase']:.4f}, MSE skill"
              f" {figures['mse_skill'] * 100:+.2f} %, DM p {'-' if p is None else f'{p:.3f}'},"
              f" direction {figures['dir_acc'] * 100:.1f} % ({ci[0] * 100:.1f}-"
              f"{ci[1] * 100:.1f}), Brier skill {figures['brier_skill'] * 100:+.2f} %:"
              f" {figures['verdict']}")


def _record_json(record: ModelRecord) -> dict[str, Any]:
    return {"id": record.id, "venue": record.key.venue, "symbol": record.key.symbol,
            "timeframe": record.key.timeframe.code, "architecture": record.architecture,
            "hyperparameters": record.hyperparameters, "feature_set": record.feature_set,
            "horizons": list(record.horizons),
            "train_start_utc": format_ms(record.train_start),
            "train_end_utc": format_ms(record.train_end),
            "data_fingerprint": record.data_fingerprint, "metrics": record.metrics,
            "verdict": record.verdict, "has_skill": record.has_skill,
            "trading_override": record.trading_override,
            "usable_for_trading": record.usable_for_trading, "active": record.active,
            "created_utc": format_ms(record.created_at), "weights_file": record.weights_file}


def _optional_key(args: argparse.Namespace) -> SeriesKey | None:
    if not args.symbol and not args.timeframe:
        return None
    if not (args.symbol and args.timeframe):
        raise InvalidArgument("give both --symbol and --timeframe")
    venue = (args.venue or DEFAULT_VENUE).strip().lower()
    return SeriesKey(venue, normalize_symbol(args.symbol), Timeframe.parse(args.timeframe))


def _model_id(text: str, what: str = "a model id") -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"{what} is a number (see `models list` or `models schedules`),"
                              f" got {text!r}") from None


def _store(args: argparse.Namespace) -> Any:
    from terminal.core.paths import resolve_data_dir
    from terminal.core.storage import Store

    return Store.open(resolve_data_dir(args.data_dir))
