"""``workbench data``: ingest candle files, inspect the store, resample, list confirmed pivots."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import polars as pl
import typer

from workbench.cli import _common
from workbench.errors import ParameterError, WorkbenchError

data_app = typer.Typer(name="data", help="Market data: ingest, info, resample, pivots.",
                       no_args_is_help=True)


def _guarded(fn: Callable[[], None]) -> None:
    """Run a command body; a WorkbenchError becomes one clear line and exit status 2."""
    try:
        fn()
    except WorkbenchError as exc:
        _common.fail(exc)


def parse_ts(text: str) -> int:
    """Return epoch ms from ``text``: an integer (epoch ms) or an ISO date/time (naive = UTC)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(f"--until {text!r} is neither epoch ms nor an ISO date such as "
                             "2025-06-01 or 2025-06-01T12:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


# -- ingest -----------------------------------------------------------------------------------
def _print_summary(d: dict) -> None:
    typer.echo(f"{d['symbol']} {d['timeframe']}: {d['status']} {d['path']}")
    typer.echo(f"  rows in file {d['rows_in_file']:,}, rows added {d['rows_added']:,}, "
               f"duplicates dropped {d['duplicates_dropped']:,}")
    typer.echo(f"  gaps {d['gaps']:,} ({d['missing_candles']:,} missing candles)")
    for lo, hi in d["gap_ranges_iso"]:
        typer.echo(f"    missing {lo} .. {hi}")
    typer.echo(f"  first {d['first_ts_iso']}, last {d['last_ts_iso']}, took {d['seconds']:.3f} s")


@data_app.command("ingest")
def ingest(
    path: str = typer.Argument(..., help="Parquet/CSV (ts,open,high,low,close,volume) or "
                                         "Binance 12-column kline CSV."),
    symbol: str = typer.Option(..., "--symbol", help="Series symbol, e.g. ETH/USDT."),
    timeframe: str = typer.Option(..., "--timeframe", help="Timeframe, e.g. 1m, 1h, 1d, 1M."),
    force_refresh: bool = typer.Option(False, "--force-refresh",
                                       help="Re-read the file even if its content is cached."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """Validate a candle file and merge it into the store atomically (cached by content hash)."""
    def body() -> None:
        from workbench.data.ingest import ingest_file

        summary = ingest_file(_common.store(), path, symbol, timeframe, force_refresh)
        _common.emit(summary.to_dict(), as_json, _print_summary)
    _guarded(body)


@data_app.command("ingest-shipped")
def ingest_shipped(
    force_refresh: bool = typer.Option(False, "--force-refresh", help="Re-read cached files."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """Ingest the five real series shipped in data/ (ETH/USDT, BTC/USDT, GOOG, EUR/USD, BTC/USD)."""
    def body() -> None:
        from workbench.data.ingest import ingest_shipped as run

        rows = [s.to_dict() for s in run(_common.store(), force_refresh)]
        _common.emit(rows, as_json, lambda rs: [_print_summary(r) for r in rs])
    _guarded(body)


# -- info -------------------------------------------------------------------------------------
def series_info(store) -> list[dict]:
    """Return one dict per stored series: rows, ISO range, gap count and missing candles."""
    import numpy as np

    from workbench.data.ingest import gap_ranges, iso_utc, step_problems

    out = []
    for row in store.series().iter_rows(named=True):
        ts = store.read_ts(row["symbol"], row["timeframe"])["ts"].to_numpy().astype(np.int64)
        _, gap_after = step_problems(ts, row["timeframe"])
        missing, pairs = gap_ranges(ts, row["timeframe"], gap_after)
        out.append({**row, "first_ts_iso": iso_utc(row["first_ts"]),
                    "last_ts_iso": iso_utc(row["last_ts"]), "gaps": int(gap_after.size),
                    "missing_candles": missing, "gap_ranges": [list(p) for p in pairs]})
    return out


def _print_info(rows: list[dict]) -> None:
    if not rows:
        typer.echo("the store holds no series; add one with: workbench data ingest PATH "
                   "--symbol S --timeframe TF")
        return
    typer.echo(f"{'symbol':10} {'tf':4} {'rows':>9}  {'first (UTC)':20}  {'last (UTC)':20}  gaps")
    for r in rows:
        typer.echo(f"{r['symbol']:10} {r['timeframe']:4} {r['rows']:>9,}  {r['first_ts_iso']:20}  "
                   f"{r['last_ts_iso']:20}  {r['gaps']} ({r['missing_candles']:,} missing)")


@data_app.command("info")
def info(as_json: bool = _common.JSON_OPTION) -> None:
    """List stored series: symbol, timeframe, candle count, UTC range and gaps."""
    _guarded(lambda: _common.emit(series_info(_common.store()), as_json, _print_info))


# -- resample ---------------------------------------------------------------------------------
@data_app.command("resample")
def resample(
    symbol: str = typer.Option(..., "--symbol", help="Stored series symbol."),
    from_tf: str = typer.Option("1m", "--from", help="Source timeframe of the stored series."),
    to_tf: str = typer.Option(..., "--to", help="Target timeframe: 5m, 15m, 1h, 4h or 1d."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """Aggregate a stored series to a coarser timeframe and store it (incomplete last bar dropped)."""
    def body() -> None:
        from workbench.data.ingest import iso_utc
        from workbench.data.resample import resample_series

        store = _common.store()
        out = resample_series(store, symbol, from_tf, to_tf)
        payload = {"symbol": symbol, "from": from_tf, "to": to_tf, "rows": out.height,
                   "first_ts": out["ts"].min(), "last_ts": out["ts"].max(),
                   "first_ts_iso": iso_utc(out["ts"].min()), "last_ts_iso": iso_utc(out["ts"].max())}
        _common.emit(payload, as_json, lambda p: typer.echo(
            f"{p['symbol']} {p['from']} -> {p['to']}: stored {p['rows']:,} candles, "
            f"{p['first_ts_iso']} .. {p['last_ts_iso']}"))
    _guarded(body)


# -- pivots -----------------------------------------------------------------------------------
def _print_pivots(rows: list[dict]) -> None:
    if not rows:
        typer.echo("no confirmed pivots")
        return
    typer.echo(f"{'type':5} {'pivot time (UTC)':20}  {'confirmed (UTC)':20}  {'price':>12}")
    for r in rows:
        typer.echo(f"{r['pivot_type']:5} {r['ts_iso']:20}  {r['confirmed_ts_iso']:20}  "
                   f"{r['price']:>12.6g}")


@data_app.command("pivots")
def pivots(
    symbol: str = typer.Option(..., "--symbol", help="Stored series symbol."),
    timeframe: str = typer.Option(..., "--timeframe", help="Stored series timeframe."),
    levels: int = typer.Option(3, "--levels", min=1, help="Pivot levels (L1..Ln)."),
    strength: int = typer.Option(2, "--strength", min=1, help="Bars on each side of a swing."),
    until: str = typer.Option(None, "--until", metavar="TS",
                              help="Only pivots confirmed by TS (epoch ms or ISO date, UTC)."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """List multi-level pivots, each with the time it was confirmed (no lookahead with --until)."""
    def body() -> None:
        from workbench.data.ingest import iso_utc
        from workbench.errors import NotFoundError
        from workbench.features.pivots import detect_pivots

        frame = _common.store().read_ohlcv(symbol, timeframe)
        if frame.height == 0:
            raise NotFoundError(f"no stored series {symbol} {timeframe}; see workbench data info")
        found = detect_pivots(frame["ts"].to_numpy(), frame["high"].to_numpy(),
                              frame["low"].to_numpy(), timeframe=timeframe, strength=strength,
                              levels=levels)
        if until is not None:
            found = found.filter(pl.col("confirmed_ts") <= parse_ts(until))
        rows = [{**r, "ts_iso": iso_utc(r["ts"]), "confirmed_ts_iso": iso_utc(r["confirmed_ts"])}
                for r in found.iter_rows(named=True)]
        _common.emit(rows, as_json, _print_pivots)
    _guarded(body)


def register(app: typer.Typer) -> None:
    """Add the ``data`` sub-command group to the root app."""
    app.add_typer(data_app, name="data")
