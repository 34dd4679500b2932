"""The ``evaluate --report`` folder: ``report.md`` with every figure, and a PNG per model.

Plots are drawn by :mod:`terminal.ui.forecast_plot` (QPainter, offscreen), imported only here.
"""

from __future__ import annotations

from pathlib import Path

from terminal.commands.candle_source import CandleData
from terminal.core.errors import InvalidArgument
from terminal.core.timefmt import format_ms
from terminal.ml.evaluate import LEAK_SKILL, Evaluation, HorizonMetrics


def write_report(evaluation: Evaluation, data: CandleData, folder: Path) -> Path:
    """Write the report into ``folder`` (created if needed); returns the Markdown file."""
    from terminal.ui.forecast_plot import render_forecast_plot

    try:
        folder.mkdir(exist_ok=True)
    except OSError as error:
        raise InvalidArgument(f"cannot create {folder}: {error.strerror}") from error
    series, rows = data.series, evaluation.test_rows
    lines = [
        f"# Forecast evaluation: {data.symbol} {series.timeframe}",
        "",
        f"{len(series):,} candles from {format_ms(int(series.open_time[0]))} to"
        f" {format_ms(int(series.open_time[-1]))}. Tested out of sample on the last"
        f" {len(rows):,} bars ({format_ms(int(series.open_time[rows[0]]))} on), refitting every"
        f" {evaluation.refit_every} bars ({evaluation.folds} refits) with a purge gap of the"
        f" longest horizon ({max(evaluation.horizons)} bars); fee {evaluation.fee * 100:g} %"
        " per side.",
        "",
        "Every figure compares with persistence (zero return) on the same bars. MASE < 1 and"
        " MSE skill > 0 mean better than persistence; the Diebold-Mariano p-value says whether"
        " that difference could be chance. Direction intervals use n/h effective samples."
        f" MSE skill above {LEAK_SKILL * 100:.0f} % is flagged as a suspected look-ahead leak.",
        "",
        "| model | h | MASE | MSE skill | DM p | dir. acc. (95 % CI) | vs always-up |"
        " Brier skill | band 10-90 | strategy | buy & hold | exposure | price R²"
        " (persistence) | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in evaluation.runs:
        lines += [_row(run.name, m) for m in run.metrics]
    lines += ["", "Price-level R² is shown only next to persistence's: a high price R² is what"
              " \"next = now\" scores and says nothing about skill.", ""]
    for run in evaluation.runs:
        if run.name == "persistence":
            continue
        lines.append(f"## {run.name}")
        lines.append("")
        for k, horizon in enumerate(evaluation.horizons):
            name = f"{run.name}_h{horizon}.png"
            render_forecast_plot(evaluation, run.name, k, folder / name)
            lines += [f"![{run.name}, {horizon}-bar horizon]({name})", ""]
    report = folder / "report.md"
    try:
        report.write_text("\n".join(lines), encoding="utf-8")
    except OSError as error:
        raise InvalidArgument(f"cannot write {report}: {error.strerror}") from error
    return report


def _row(name: str, m: HorizonMetrics) -> str:
    p = "-" if m.dm_pvalue is None else f"{m.dm_pvalue:.3f}"
    return (f"| {name} | {m.horizon} | {m.mase:.4f} | {m.mse_skill * 100:+.2f} % | {p} |"
            f" {m.dir_acc * 100:.1f} % ({m.dir_acc_ci[0] * 100:.1f}-{m.dir_acc_ci[1] * 100:.1f})"
            f" | {m.dir_edge * 100:+.1f} pt | {m.brier_skill * 100:+.2f} % |"
            f" {m.band_coverage * 100:.0f} % | {m.strategy_return * 100:+.1f} % |"
            f" {m.buy_and_hold_return * 100:+.1f} % | {m.strategy_exposure * 100:.0f} % |"
            f" {m.r2_price:.5f} ({m.r2_price_persistence:.5f}) | {m.verdict} |")
