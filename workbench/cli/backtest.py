"""CLI commands of the backtest part: ``workbench backtest`` and ``workbench lookahead-check``.

Dates (``--start`` / ``--end``) are ISO dates or datetimes (UTC unless a zone is given) or
epoch milliseconds; both ends are inclusive candle open times.
"""
from __future__ import annotations

from datetime import datetime, timezone

import typer

from workbench.cli import _common
from workbench.errors import ParameterError, WorkbenchError


def parse_when(text: str | None, *, end: bool = False) -> int | None:
    """Return epoch ms for an ISO date/datetime or an integer epoch-ms string.

    A bare date as ``end`` means the end of that day (its last millisecond).
    Raises ParameterError naming the text when it is neither.
    """
    if text is None:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ParameterError(f"date {text!r} is neither ISO-8601 (2024-01-31, "
                             "2024-01-31T12:00) nor epoch milliseconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    ms = int(when.timestamp() * 1000)
    bare_date = len(text) == 10
    return ms + 86_400_000 - 1 if end and bare_date else ms


def _progress_bar():
    from tqdm.auto import tqdm

    bars: dict[str, tqdm] = {}

    def progress(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = tqdm(total=total, desc=phase, leave=False, disable=None)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return progress


def _print_summary(summary: dict) -> None:
    typer.echo(f"backtest {summary['backtest_id']}  {summary['symbol']} {summary['timeframe']}  "
               f"{summary['n_bars']} candles")
    for key in ("final_equity", "pnl", "return_pct", "n_trades", "win_rate", "max_drawdown",
                "sharpe", "exposure", "fees_paid"):
        typer.echo(f"  {key:<14} {summary[key]:.6g}")
    if summary.get("trades_path"):
        typer.echo(f"  trades         {summary['trades_path']}")
        typer.echo(f"  equity         {summary['equity_path']}")


def backtest(
    model: str = typer.Option(None, "--model", metavar="RUN_ID", help="Backtest this run's model."),
    signals: str = typer.Option(None, "--signals", metavar="FILE.parquet",
                                help="Backtest a signal file (columns ts, signal in {-1,0,1})."),
    symbol: str = typer.Option(..., "--symbol", help="Symbol, e.g. ETH/USDT."),
    timeframe: str = typer.Option(..., "--timeframe", help="Timeframe, e.g. 1m."),
    start: str = typer.Option(None, "--start", help="First candle (ISO date or epoch ms)."),
    end: str = typer.Option(None, "--end", help="Last candle (ISO date or epoch ms)."),
    fee: float = typer.Option(0.001, "--fee", help="Fee per fill, fraction of value."),
    slippage: float = typer.Option(0.0, "--slippage", help="Slippage per fill, fraction."),
    fill: str = typer.Option("next_open", "--fill", help="next_open or close."),
    long_only: bool = typer.Option(False, "--long-only", help="SELL means flat, never short."),
    size: str = typer.Option("fixed", "--size", help="fixed (units) or fraction (of equity)."),
    amount: float = typer.Option(None, "--amount",
                                 help="Units (fixed, default 1) or fraction (default 1.0)."),
    cash: float = typer.Option(10_000.0, "--cash", help="Initial cash."),
    threshold: float = typer.Option(None, "--threshold",
                                    help="Minimum model confidence for BUY/SELL."),
    train_during: str = typer.Option(None, "--train-during", metavar="MODE",
                                     help="Walk-forward: train while replaying (every_candle, "
                                          "pivots_only)."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch",
                                        help="Use a model trained on another symbol/timeframe."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """Backtest a model or a signal file on a symbol/timeframe/range and store the result."""
    from workbench.backtest.engine import BacktestConfig, run_backtest
    from workbench.backtest.simulate import SimConfig

    try:
        if model:  # a model trained on another series is refused unless allowed
            from workbench.train.lineage import check_compatible

            check_compatible(model, _common.db_path(), symbol, timeframe,
                             allow_mismatch=allow_mismatch)
        sim = SimConfig(fee=fee, slippage=slippage, fill=fill, long_only=long_only,
                        size_mode=size, size=1.0 if amount is None else amount, cash=cash)
        cfg = BacktestConfig(symbol=symbol, timeframe=timeframe, start=parse_when(start),
                             end=parse_when(end, end=True), model=model, signals_path=signals,
                             sim=sim, threshold=threshold, train_during=train_during)
        run = run_backtest
        if cfg.walk_forward:  # its signals come from a session that trains as it replays
            from workbench.live.walk_forward import run_walk_forward_backtest as run
        result = run(cfg, store=_common.store(),
                              progress=None if as_json else _progress_bar())
    except WorkbenchError as exc:
        _common.fail(exc)
    _common.emit(result.summary(), as_json, _print_summary)


def lookahead_check(
    model: str = typer.Option(..., "--model", metavar="RUN_ID",
                              help="The run whose model to check."),
    symbol: str = typer.Option(..., "--symbol", help="Symbol, e.g. ETH/USDT."),
    timeframe: str = typer.Option(..., "--timeframe", help="Timeframe, e.g. 1m."),
    start: str = typer.Option(None, "--start", help="First candle (ISO date or epoch ms)."),
    end: str = typer.Option(None, "--end", help="Last candle (ISO date or epoch ms)."),
    samples: int = typer.Option(20, "--samples", help="Truncation times to sample."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """Recompute a model's signals on truncated histories and report any that differ."""
    from workbench.backtest.engine import BacktestConfig, model_lookahead_check

    try:
        cfg = BacktestConfig(symbol=symbol, timeframe=timeframe, start=parse_when(start),
                             end=parse_when(end, end=True), model=model, persist=False)
        report = model_lookahead_check(cfg, _common.store(), samples=samples)
    except WorkbenchError as exc:
        _common.fail(exc)
    payload = report.to_dict()
    _common.emit(payload, as_json, _print_lookahead)
    if not report.passed:
        raise typer.Exit(1)


def _print_lookahead(payload: dict) -> None:
    verdict = "PASSED" if payload["passed"] else "FAILED"
    typer.echo(f"lookahead check {verdict}: {len(payload['sample_times'])} sample times, "
               f"{payload['rows_compared']} rows compared, "
               f"{payload['n_differences']} differing signals")
    for d in payload["differences"]:
        typer.echo(f"  ts {d['ts']} (truncated at {d['sample_ts']}): full {d['full']:+g}, "
                   f"truncated {d['truncated']:+g}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("backtest")(backtest)
    app.command("lookahead-check")(lookahead_check)
