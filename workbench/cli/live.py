"""CLI command of the live part: ``workbench live`` runs a live session over history or an exchange.

``workbench live --model RUN_ID --symbol S --timeframe TF --mode MODE --start D --end D
[--speed max|1x|Nx] [--manual-labels FILE] [--ledger] [--json]`` loads the run's model, replays
the stored candles of the range through the feed and the coordinator in the chosen training mode
and reports predictions, training steps, lock waits, signals, PnL and errors. Training changes
only the in-memory model; the run's checkpoints are never written. ``--save`` saves the trained
model as a new run (``saved_run_id``; its ``run.json`` names the parent). A model trained on
another symbol or timeframe is refused unless ``--allow-mismatch``, and a series shorter than the
model's window is refused before the replay starts.

``--source exchange --exchange ID [--exchange-url URL] [--until TS | --max-candles N]`` follows
an exchange through ccxt instead (``workbench.live.exchange_source``): backfill from the last
stored candle, then every candle as it closes, stored as it closes; without ``--until`` /
``--max-candles`` it runs until Ctrl-C. ``--json`` adds the source's status under ``source``.

A manual-labels file (CSV or Parquet, columns ``ts`` and ``action`` in BUY/SELL/HOLD) drives mode
``manual``: when the candle at ``ts`` closes, the session calls ``train_manual(action)``.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from workbench.cli import _common
from workbench.errors import (DataValidationError, NotFoundError, ParameterError,
                              WorkbenchError)
from workbench.data.candle_files import ts_to_epoch_ms
from workbench.live.modes import TrainingMode


def read_manual_labels(path) -> dict[int, str]:
    """Read a manual-labels file into ``{ts: action}``.

    Raises
    ------
    NotFoundError : when the file does not exist.
    DataValidationError : naming the file, row and rule for a missing column, a ts that is neither
        epoch ms nor ISO-8601 with a zone, or an action outside BUY/SELL/HOLD.
    """
    from workbench.actions import ACTIONS

    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"manual-labels file {path} does not exist")
    try:
        frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    except Exception as exc:  # polars raises several types for an unreadable file
        raise DataValidationError(f"cannot read ({type(exc).__name__}: {exc})", path=path,
                                  rule="readable") from exc
    missing = [c for c in ("ts", "action") if c not in frame.columns]
    if missing:
        raise DataValidationError(f"missing column(s) {', '.join(missing)}", path=path,
                                  rule="required_columns")
    first_row = 1 if path.suffix == ".parquet" else 2  # a CSV row is its line, header = line 1
    # epoch ms or ISO-8601 with a zone, exactly as ingest accepts candle timestamps
    ts_ms = ts_to_epoch_ms(frame["ts"], path, first_row)
    out = {}
    for row, (ts, action) in enumerate(zip(ts_ms, frame["action"]), start=first_row):
        name = str(action).strip().upper() if action is not None else ""
        if name not in ACTIONS:
            raise DataValidationError(f"action {action!r} is not one of {ACTIONS}", path=path,
                                      row=row, ts=ts, rule="action_in_actions")
        out[int(ts)] = name
    return out


def _print_stats(payload: dict) -> None:
    pnl = payload["pnl"]
    typer.echo(f"live {payload['mode']} {payload['symbol']} {payload['timeframe']} "
               f"(model {payload['run_id']}): {payload['state']}")
    typer.echo(f"  candles        {payload['candles']}  ({payload['candles_per_s']} /s)")
    typer.echo(f"  predictions    {payload['predictions']}")
    typer.echo(f"  training steps {payload['training_steps']}  (per_candle "
               f"{payload['per_candle']}, pivot {payload['pivot']}, manual "
               f"{payload['manual_step']})")
    typer.echo(f"  lock waits     {payload['lock_waits']}  ({payload['lock_wait_s']:.3f} s)")
    typer.echo("  signals        " + ", ".join(f"{k} {v}" for k, v in payload["signals"].items()))
    typer.echo(f"  PnL            equity {pnl['equity']:.2f}  return {pnl['return_pct']:.4f}%  "
               f"fills {pnl['fills']}")
    typer.echo(f"  errors         {payload['errors']}")
    if payload.get("recent_errors"):
        last = payload["recent_errors"][-1]
        typer.echo(f"  last error     {last['error']} (candle ts {last['event_ts']})")
    paper = payload.get("paper")
    if paper:
        typer.echo(f"  paper          position {paper['position']:g}  entry "
                   f"{paper['entry_price']}  unrealised {paper['unrealised_pnl']:.2f}  equity "
                   f"{paper['equity']:.2f}  fills {paper['fills']}  (session "
                   f"{paper['session_id']})")
    src = payload.get("source")
    if src:
        typer.echo(f"  source         {src['exchange']} via {src['transport']}: last candle "
                   f"{src['last_candle_ts']}, lag {src['lag_ms']} ms, backfilled "
                   f"{src['backfilled']}, reconnects {src['reconnects']}, rate limited "
                   f"{src['rate_limited']}, duplicates {src['duplicates']}, revisions "
                   f"{src['revisions']}")
    if payload.get("mismatch"):
        typer.echo(f"  warning        {payload['mismatch']}")
    if payload.get("saved_run_id"):
        typer.echo(f"  saved as run   {payload['saved_run_id']} (parent {payload['run_id']})")


def live(
    model: str = typer.Option(..., "--model", metavar="RUN_ID", help="The run whose model to use."),
    symbol: str = typer.Option(..., "--symbol", help="Symbol, e.g. ETH/USDT."),
    timeframe: str = typer.Option(..., "--timeframe", help="Timeframe, e.g. 1m."),
    mode: str = typer.Option(TrainingMode.NONE.value, "--mode",
                             help=f"Training mode: {', '.join(TrainingMode.values())}."),
    start: str = typer.Option(None, "--start", help="First candle (ISO date or epoch ms)."),
    end: str = typer.Option(None, "--end", help="Last candle (ISO date or epoch ms)."),
    speed: str = typer.Option("max", "--speed", help="max, 1x (real time) or Nx."),
    manual_labels: str = typer.Option(None, "--manual-labels", metavar="FILE",
                                      help="CSV/Parquet of ts, action for mode manual."),
    ledger: bool = typer.Option(False, "--ledger", help="Write every frame to the ledger."),
    source: str = typer.Option("replay", "--source",
                               help="replay (stored history) or exchange (ccxt, live)."),
    exchange: str = typer.Option("binance", "--exchange", help="ccxt exchange id (--source "
                                 "exchange)."),
    exchange_url: str = typer.Option(None, "--exchange-url", metavar="URL",
                                     help="Base URL replacing the exchange's hosts (e.g. the "
                                          "local exchange-sim)."),
    until: str = typer.Option(None, "--until", help="Exchange: last candle to follow (ISO or "
                              "epoch ms); default: until stopped."),
    max_candles: int = typer.Option(None, "--max-candles", help="Exchange: candles to emit, "
                                    "backfill included; default: until stopped."),
    paper: bool = typer.Option(False, "--paper", help="Paper-trade the signals (orders, fills, "
                               "equity and position kept in the store)."),
    save: bool = typer.Option(False, "--save",
                              help="Save the session's trained model as a new run at the end."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch",
                                        help="Use a model trained on another symbol/timeframe."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """Run a live session in a training mode over stored history (replay) or an exchange's
    candles as they close (exchange), and report what happened. Ctrl-C stops cleanly."""
    from workbench.cli.backtest import parse_when
    from workbench.live.live_view import live_view, open_session
    from workbench.live.session import SessionConfig
    from workbench.train.handle import load_model
    from workbench.train.lineage import check_compatible, check_length

    try:
        training_mode = TrainingMode.parse(mode)
        if manual_labels and training_mode is not TrainingMode.MANUAL:
            raise ParameterError(f"--manual-labels needs --mode {TrainingMode.MANUAL.value}; "
                                 f"got --mode {training_mode.value}")
        labels = read_manual_labels(manual_labels) if manual_labels else None
        warning = check_compatible(model, _common.db_path(), symbol, timeframe,
                                   allow_mismatch=allow_mismatch)
        handle = load_model(model, _common.db_path())
        exchange_options = {} if source != "exchange" else dict(
            exchange=exchange, url=exchange_url, until=parse_when(until, end=True),
            max_candles=max_candles)
        live_run = open_session(handle, _common.store(), symbol, timeframe, training_mode,
                                source=source, start=parse_when(start),
                                end=parse_when(end, end=True), speed=speed, paper=paper,
                                config=SessionConfig(ledger=ledger, manual_labels=labels),
                                **exchange_options)
        session = live_run.session
        if source != "exchange":  # an exchange session backfills what it needs first
            check_length(model, handle.window, symbol, timeframe, session.series.length)
        stats = session.run()
        view = live_view(live_run)
        if live_run.broker is not None:
            live_run.broker.close()
        saved = _save(session) if save else None
    except WorkbenchError as exc:
        _common.fail(exc)
    paper_view = view["paper"] and {k: v for k, v in view["paper"].items()
                                    if k != "equity_curve"}
    _common.emit({**stats, "run_id": model, "speed": speed, "source": view["source"],
                  "paper": paper_view, "saved_run_id": saved, "mismatch": warning or None},
                 as_json, _print_stats)


def _save(session) -> str:
    """Save the session's model as a new run (parent: the loaded run); return its id."""
    from workbench.train.lineage import save_as_run

    ts = session.series.ts[session.feed.start_index:session.feed.last_index + 1]
    record = save_as_run(session.handle, _common.db_path(), session_id=session.session_id,
                         mode=session.mode, symbol=session.symbol, timeframe=session.timeframe,
                         first_ts=int(ts[0]) if len(ts) else None,
                         last_ts=int(ts[-1]) if len(ts) else None,
                         training_steps=session.counts["training_steps"])
    return record["run_id"]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("live")(live)
