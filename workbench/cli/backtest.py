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


def _print_result(result, summary: dict) -> None:
    """Print the statistics block as backtesting.py's names with units, the file paths, and the
    verdict against the baselines."""
    from workbench.backtest.stats import format_stats

    typer.echo(f"backtest {summary['backtest_id']}  {summary['symbol']} {summary['timeframe']}  "
               f"{summary['n_bars']} candles")
    for name, value in format_stats(result.stats):
        typer.echo(f"  {name:<24} {value}")
    typer.echo(f"  ({result.stats.annualisation.describe()})")
    note = result.open_trades_note()
    if note:
        typer.echo(f"  ({note})")
    if summary.get("trades_path"):
        typer.echo(f"  trades  {summary['trades_path']}")
        typer.echo(f"  equity  {summary['equity_path']}")
    if summary.get("baselines"):
        typer.echo(summary["baselines"]["verdict"])
    if summary.get("training_steps") is not None:
        typer.echo(f"  training steps {summary['training_steps']}")
    if summary.get("saved_run_id"):
        typer.echo(f"  saved as run   {summary['saved_run_id']} (parent {summary['run_id']})")


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
    draws: int = typer.Option(100, "--draws", help="Random-entry baseline draws."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch",
                                        help="Use a model trained on another symbol/timeframe."),
    save: bool = typer.Option(False, "--save", help="With --train-during: save the model it "
                                                    "trained as a new run (saved_run_id)."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """Backtest a model or a signal file on a symbol/timeframe/range and store the result."""
    from workbench.backtest.engine import BacktestConfig, run_backtest
    from workbench.backtest.simulate import SimConfig
    from workbench.research.baselines import backtest_baselines

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
        progress = None if as_json else _progress_bar()
        if cfg.walk_forward:  # its signals come from a session that trains as it replays
            result, summary = _walk_forward(cfg, _common.store(), progress, save)
        elif save:
            raise ParameterError("--save needs --train-during MODE: a backtest without "
                                 "training leaves the model as it was saved")
        else:
            result = run_backtest(cfg, store=_common.store(), progress=progress)
            summary = result.summary()
        summary["baselines"] = backtest_baselines(result, _common.store(), draws=draws)
    except WorkbenchError as exc:
        _common.fail(exc)
    _common.emit(summary, as_json, lambda _: _print_result(result, summary))


def _walk_forward(cfg, store, progress, save: bool):
    """Run a walk-forward backtest; with ``save``, save the model it trained as a new run.

    Returns the result and its summary (with ``saved_run_id``)."""
    from workbench.live.walk_forward import run_walk_forward_backtest
    from workbench.train.handle import load_model
    from workbench.train.lineage import save_as_run

    if cfg.model is None:
        raise ParameterError("--train-during needs a model (--model RUN_ID)")
    handle = load_model(cfg.model, store.path)
    result = run_walk_forward_backtest(cfg, store=store, progress=progress, handle=handle)
    summary = {**result.summary(), "saved_run_id": None}
    if save:
        mode = cfg.params()["train_during"]
        record = save_as_run(handle, store.path, session_id=f"walk-forward-{mode}", mode=mode,
                             symbol=cfg.symbol, timeframe=cfg.timeframe,
                             first_ts=summary["start_ts"], last_ts=summary["end_ts"],
                             training_steps=result.training_steps)
        summary["saved_run_id"] = record["run_id"]
    return result, summary


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
