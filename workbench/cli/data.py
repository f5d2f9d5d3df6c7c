"""``workbench data``: ingest candle files, inspect the store, resample, list confirmed pivots."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import polars as pl
import typer

from workbench.cli import _common
from workbench.data.epoch import UNIT_NAMES
from workbench.errors import ParameterError, WorkbenchError

data_app = typer.Typer(name="data", help="Market data: ingest, info, resample, pivots, delete.",
                       no_args_is_help=True)
#: the pivot levels ``data pivots --levels`` accepts (each level is a pass over the series)
PIVOT_LEVELS = (1, 10)


def _guarded(fn: Callable[[], None]) -> None:
    """Run a command body; a WorkbenchError becomes one clear line and exit status 2."""
    try:
        fn()
    except WorkbenchError as exc:
        _common.fail(exc)


def parse_ts(text: str, option: str = "--until") -> int:
    """Return epoch ms from ``text``: an integer (epoch ms) or an ISO date/time (naive = UTC)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(f"{option} {text!r} is neither epoch ms nor an ISO date such as "
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
    if d.get("ts_unit") in ("s", "us", "ns"):
        typer.echo(f"  ts read as epoch {UNIT_NAMES[d['ts_unit']]} (stored as ms)")


@data_app.command("ingest")
def ingest(
    path: str = typer.Argument(..., help="Parquet/CSV (ts,open,high,low,close,volume) or "
                                         "Binance 12-column kline CSV."),
    symbol: str = typer.Option(..., "--symbol", help="Series symbol, e.g. ETH/USDT."),
    timeframe: str = typer.Option(..., "--timeframe", help="Timeframe, e.g. 1m, 1h, 1d, 1M."),
    force_refresh: bool = typer.Option(False, "--force-refresh",
                                       help="Re-read the file even if its content is cached."),
    ts_unit: str = typer.Option(None, "--ts-unit", metavar="s|ms|us|ns",
                                help="Unit of integer ts (default: inferred where the magnitude "
                                     "leaves no doubt, else the file is refused)."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """Validate a candle file and merge it into the store atomically (cached by content hash)."""
    def body() -> None:
        from workbench.data.ingest import ingest_file

        summary = ingest_file(_common.store(), path, symbol, timeframe, force_refresh,
                              ts_unit=ts_unit)
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
    """Return one dict per stored series: rows, ISO range, gap count and missing candles.

    Works on any store, even one an older version filled with ts in another unit: such rows are
    counted as ``invalid_ts_rows`` (shown as ``invalid ts N``, left out of the gap count) instead of
    breaking the report, so the user can see them and remove them with ``data delete``.
    """
    import numpy as np

    from workbench.data.epoch import in_iso_range, iso_utc
    from workbench.data.ingest import gap_ranges, step_problems

    out = []
    for row in store.series().iter_rows(named=True):
        ts = store.read_ts(row["symbol"], row["timeframe"])["ts"].to_numpy().astype(np.int64)
        valid = in_iso_range(ts)
        ts = ts[valid]
        _, gap_after = step_problems(ts, row["timeframe"])
        missing, pairs = gap_ranges(ts, row["timeframe"], gap_after)
        out.append({**row, "first_ts_iso": iso_utc(row["first_ts"]),
                    "last_ts_iso": iso_utc(row["last_ts"]), "gaps": int(gap_after.size),
                    "missing_candles": missing, "gap_ranges": [list(p) for p in pairs],
                    "invalid_ts_rows": int((~valid).sum())})
    return out


def _print_invalid(r: dict) -> None:
    from workbench.data.epoch import MAX_MS, MIN_MS

    typer.echo(f"  {r['symbol']} {r['timeframe']}: {r['invalid_ts_rows']:,} candle(s) with a ts that is "
               "no date (stored in another unit by an older version?); remove them with:")
    fix = f"workbench data delete --symbol '{r['symbol']}' --timeframe {r['timeframe']}"
    if r["last_ts"] > MAX_MS:
        typer.echo(f"    {fix} --start {MAX_MS + 1} --yes")
    if r["first_ts"] < MIN_MS:
        typer.echo(f"    {fix} --end {MIN_MS - 1} --yes")


def _print_info(rows: list[dict]) -> None:
    if not rows:
        typer.echo("the store holds no series; add one with: workbench data ingest PATH "
                   "--symbol S --timeframe TF")
        return
    typer.echo(f"{'symbol':10} {'tf':4} {'rows':>9}  {'first (UTC)':20}  {'last (UTC)':20}  gaps")
    for r in rows:
        typer.echo(f"{r['symbol']:10} {r['timeframe']:4} {r['rows']:>9,}  {r['first_ts_iso']:20}  "
                   f"{r['last_ts_iso']:20}  {r['gaps']} ({r['missing_candles']:,} missing)")
    for r in rows:
        if r["invalid_ts_rows"]:
            _print_invalid(r)


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
    levels: int = typer.Option(3, "--levels", help=f"Pivot levels (L1..Ln), "
                                                   f"{PIVOT_LEVELS[0]}..{PIVOT_LEVELS[1]}."),
    strength: int = typer.Option(2, "--strength", help="Bars on each side of a swing (>= 1)."),
    until: str = typer.Option(None, "--until", metavar="TS",
                              help="Only pivots confirmed by TS (epoch ms or ISO date, UTC)."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """List multi-level pivots, each with the time it was confirmed (no lookahead with --until)."""
    def body() -> None:
        from workbench.data.ingest import iso_utc
        from workbench.errors import NotFoundError
        from workbench.features.pivots import detect_pivots

        _check_pivot_options(levels, strength)
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


def _check_pivot_options(levels: int, strength: int) -> None:
    """Bound the options before any work: ``--levels 100000`` took 15 s and meant nothing."""
    lo, hi = PIVOT_LEVELS
    if not lo <= levels <= hi:
        raise ParameterError(f"--levels {levels} is out of range; use {lo}..{hi}")
    if strength < 1:
        raise ParameterError(f"--strength {strength} is out of range; use 1 or more")


# -- delete -----------------------------------------------------------------------------------
def _deleted_text(d: dict) -> str:
    c = d["deleted"]
    return (f"{c['candles']:,} candle(s), {c['pivot_points']:,} pivot(s), {c['indicators']:,} "
            f"indicator row(s), {c['ingest_cache']:,} ingest-cache row(s)")


def _span_text(start, end) -> str:
    from workbench.data.epoch import MAX_MS, MIN_MS, iso_utc

    def when(ts, unbounded: str) -> str:
        if ts is None:
            return unbounded
        return iso_utc(ts) if MIN_MS <= ts <= MAX_MS else f"ts {ts}"
    if start is None and end is None:
        return ""
    return f" from {when(start, 'the start')} to {when(end, 'the end')}"


@data_app.command("delete")
def delete(
    symbol: str = typer.Option(..., "--symbol", help="Stored series symbol."),
    timeframe: str = typer.Option(..., "--timeframe", help="Stored series timeframe."),
    start: str = typer.Option(None, "--start", metavar="TS",
                              help="First candle to delete (epoch ms or ISO, UTC; inclusive)."),
    end: str = typer.Option(None, "--end", metavar="TS",
                            help="Last candle to delete (epoch ms or ISO, UTC; inclusive)."),
    yes: bool = typer.Option(False, "--yes", help="Really delete; without it nothing changes."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """Delete a series, or its candles in [--start, --end], with its pivots, indicators and
    ingest cache (annotations are kept)."""
    def body() -> None:
        from workbench.errors import NotFoundError

        lo = None if start is None else parse_ts(start, "--start")
        hi = None if end is None else parse_ts(end, "--end")
        if lo is not None and hi is not None and lo > hi:
            raise ParameterError(f"--start {start} is after --end {end}")
        store = _common.store()
        plan = store.delete_series(symbol, timeframe, lo, hi, dry_run=True)
        if not any(plan.values()):
            raise NotFoundError(f"no stored series {symbol} {timeframe}; see workbench data info")
        what = _deleted_text({"deleted": plan}) + f" of {symbol} {timeframe}{_span_text(lo, hi)}"
        if not yes:
            raise ParameterError(f"not deleting without --yes: this would delete {what}")
        counts = store.delete_series(symbol, timeframe, lo, hi)
        left = counts.pop("candles_left")
        payload = {"symbol": symbol, "timeframe": timeframe, "start": lo, "end": hi,
                   "deleted": counts, "candles_left": left}
        _common.emit(payload, as_json, lambda d: typer.echo(
            f"{symbol} {timeframe}: deleted {_deleted_text(d)}{_span_text(lo, hi)}; "
            f"{d['candles_left']:,} candle(s) left"))
    _guarded(body)


def register(app: typer.Typer) -> None:
    """Add the ``data`` sub-command group to the root app."""
    app.add_typer(data_app, name="data")
