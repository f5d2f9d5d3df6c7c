"""The DuckDB store: schema and every SQL statement of the workbench.

All SQL lives in this module and always uses bound parameters. Other modules call the methods of
:class:`Store`; none of them opens a DuckDB connection itself.

Concurrency design
------------------
DuckDB lets one process at a time hold a database file open read-write, and a read-only open
conflicts with a writer in another process. Several processes must nevertheless use the same file
at once (a notebook kernel ingesting, another kernel reading, a Voila dashboard reading), so:

* **No process holds the file open.** Every operation opens a connection, runs one short
  transaction and closes it, so the OS file lock is held for milliseconds.
* **Every open retries.** When another process holds the lock, DuckDB raises an ``IOException``
  ("Could not set lock on file"). :meth:`Store._connect` retries with jittered exponential backoff
  until ``busy_timeout`` seconds have passed, then raises :class:`StoreBusyError`, a typed error with
  a clear message. The raw DuckDB lock error never reaches a user.
* **Waiters get their turn.** A process that finds the file locked leaves a fresh marker file
  (``<db>.waiting.<pid>``) while it retries; a process about to open the store steps aside for
  50 ms when it sees another process's marker, so a tight write loop cannot starve a reader.
* **One writer at a time, atomically.** Writes run inside ``BEGIN ... COMMIT``; a failure rolls
  back, so nothing is half-written. Within one process, DuckDB shares one database instance
  between connections to the same path, so threads do not contend on the file lock; each thread
  uses its own cursor.
* **Readers work on snapshots.** Hot paths (replay, windows, backtests) read a range once into
  memory (numpy/polars) and work on that snapshot; they never keep a cursor open.
* All connections use the same (read-write) configuration, because DuckDB refuses to mix
  read-only and read-write connections to one file inside a process.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import duckdb
import polars as pl

from workbench.errors import DataValidationError, ParameterError, StoreBusyError, StoreError
from workbench.paths import resolve_db_path

OHLCV_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
ACTIONS = ("BUY", "SELL", "HOLD")
ANNOTATION_SOURCES = ("manual", "pivot", "rule")
INDICATOR_COLUMNS = ("returns", "log_returns", "sma_10", "sma_20", "sma_50", "ema_10", "ema_20",
                     "ema_50", "rsi_14", "atr_14", "volume_z")
BACKTEST_COLUMNS = ("backtest_id", "run_id", "symbol", "timeframe", "start_ts", "end_ts",
                    "created_at", "final_equity", "pnl", "return_pct", "n_trades", "win_rate",
                    "max_drawdown", "sharpe", "exposure", "params", "trades_path", "equity_path")

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS ohlcv (
        symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, ts BIGINT NOT NULL,
        open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,
        volume DOUBLE NOT NULL)""",
    # seed 001's pivot table plus confirmed_ts: the close of the first candle at which the pivot
    # is knowable. ts is the pivot candle's open time.
    """CREATE TABLE IF NOT EXISTS pivot_points (
        symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, ts BIGINT NOT NULL,
        confirmed_ts BIGINT NOT NULL, price DOUBLE NOT NULL, pivot_type VARCHAR NOT NULL,
        level INTEGER NOT NULL, strength INTEGER NOT NULL,
        PRIMARY KEY (symbol, timeframe, ts, pivot_type))""",
    """CREATE TABLE IF NOT EXISTS indicators (
        symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, ts BIGINT NOT NULL,
        returns DOUBLE, log_returns DOUBLE, sma_10 DOUBLE, sma_20 DOUBLE, sma_50 DOUBLE,
        ema_10 DOUBLE, ema_20 DOUBLE, ema_50 DOUBLE, rsi_14 DOUBLE, atr_14 DOUBLE,
        volume_z DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS annotations (
        symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, ts BIGINT NOT NULL,
        action VARCHAR NOT NULL CHECK (action IN ('BUY', 'SELL', 'HOLD')),
        source VARCHAR NOT NULL CHECK (source IN ('manual', 'pivot', 'rule')),
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (symbol, timeframe, ts, source))""",
    """CREATE TABLE IF NOT EXISTS ingest_cache (
        content_hash VARCHAR NOT NULL, symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL,
        path VARCHAR NOT NULL, rows BIGINT NOT NULL,
        ingested_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (content_hash, symbol, timeframe))""",
    # the prediction ledger (coordinator issue): one row per inference frame, outcome filled in
    # once known.
    """CREATE TABLE IF NOT EXISTS prediction_ledger (
        inference_id VARCHAR NOT NULL, session_id VARCHAR, run_id VARCHAR,
        model_version BIGINT, symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL,
        prediction_ts BIGINT NOT NULL, target_ts BIGINT NOT NULL,
        data_range_start BIGINT NOT NULL, data_range_end BIGINT NOT NULL,
        predicted_action VARCHAR, confidence DOUBLE,
        pred_open DOUBLE, pred_high DOUBLE, pred_low DOUBLE, pred_close DOUBLE,
        actual_open DOUBLE, actual_high DOUBLE, actual_low DOUBLE, actual_close DOUBLE,
        realised_move DOUBLE, pivot_type VARCHAR, pivot_confirmed_ts BIGINT,
        recorded_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
    """CREATE TABLE IF NOT EXISTS backtest_results (
        backtest_id VARCHAR PRIMARY KEY, run_id VARCHAR, symbol VARCHAR NOT NULL,
        timeframe VARCHAR NOT NULL, start_ts BIGINT, end_ts BIGINT,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        final_equity DOUBLE, pnl DOUBLE, return_pct DOUBLE, n_trades BIGINT, win_rate DOUBLE,
        max_drawdown DOUBLE, sharpe DOUBLE, exposure DOUBLE, params VARCHAR,
        trades_path VARCHAR, equity_path VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, kind VARCHAR, status VARCHAR,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp, summary VARCHAR)""",
]

_schema_ready: set[Path] = set()
_schema_guard = threading.Lock()
_WAITER_FRESH_S = 2.0  # a waiting marker older than this belongs to a process that gave up or died
_WAITER_YIELD_S = 0.05  # how long an opener steps aside for a waiting process
_CREATING_S = 5.0  # a header-less store file younger than this is still being created

# -- threads of one process (added for issue 6's stress test) ---------------------------------
# DuckDB shares one database instance between the connections of a process and tears it down
# when the last one closes; a connect racing that close fails with "Unique file handle conflict".
# Opening and closing under one lock removes the race. Writers of one process also take turns
# (one lock per file), so their transactions never conflict (tests/live/test_stress.py).
_open_guard = threading.Lock()
_write_guards: dict[Path, threading.RLock] = {}


def _write_guard(path: Path) -> threading.RLock:
    with _open_guard:
        return _write_guards.setdefault(path, threading.RLock())


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("could not set" in text or "conflicting" in text or "resource" in text)


@contextlib.contextmanager
def _registered(con, name: str, frame: pl.DataFrame) -> Iterator[None]:
    """Expose ``frame`` to SQL as ``name`` for one block.

    Once a statement has aborted the transaction, unregistering fails too; that second error is
    suppressed so the statement's own error (the one naming the broken rule) reaches the caller.
    """
    con.register(name, frame.to_arrow())
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)


class Store:
    """Access to one DuckDB database file.

    Parameters
    ----------
    path : database file; resolved with :func:`workbench.paths.resolve_db_path` when ``None``.
    busy_timeout : seconds to keep retrying when another process holds the file lock.
    """

    def __init__(self, path=None, *, busy_timeout: float = 30.0):
        self.path = resolve_db_path(path)
        self.busy_timeout = float(busy_timeout)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- connections -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open a short-lived connection, retrying while another process holds the lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.005
        waiting = self.path.with_name(f"{self.path.name}.waiting.{os.getpid()}")
        self._yield_to_waiters(waiting.name)
        try:
            while True:
                try:
                    with _open_guard:
                        created = not self.path.exists()
                        con = duckdb.connect(str(self.path))
                    break
                except duckdb.Error as exc:
                    if not (_is_lock_error(exc) or self._being_created(exc)):
                        raise StoreError(f"cannot open store {self.path}: {exc}") from exc
                    if time.monotonic() >= deadline:
                        raise StoreBusyError(
                            f"store {self.path} stayed locked by another process for "
                            f"{self.busy_timeout:.0f} s; close long-running writers or retry"
                        ) from None
                    waiting.touch()  # tell the holder someone waits (see _yield_to_waiters)
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.25)
        finally:
            with contextlib.suppress(OSError):
                waiting.unlink()
        try:
            self._ensure_schema(con, created)
            yield con
        finally:
            with _open_guard:
                con.close()

    def _being_created(self, exc: BaseException) -> bool:
        """True when another process has just created the file and not yet written its header.

        DuckDB creates the file before it writes the header, so a process opening a brand-new
        store at that instant reads "not a valid DuckDB database file"; only a young file is
        given that benefit of the doubt, an old one is reported as damaged.
        """
        if "not a valid duckdb database file" not in str(exc).lower():
            return False
        with contextlib.suppress(OSError):
            return time.time() - self.path.stat().st_mtime < _CREATING_S
        return False

    def _yield_to_waiters(self, own: str) -> None:
        """Pause briefly before opening when another process waits for the file lock.

        Retrying with backoff alone is not fair: a process that opens the store in a tight loop
        (a live session writing its ledger) gets the lock back within microseconds and can starve
        a reader for the whole busy timeout. A waiting process leaves a marker file beside the
        database (refreshed on every retry, ignored once stale) and an opener that sees someone
        else's marker lets it in first.
        """
        prefix, now = f"{self.path.name}.waiting.", time.time()
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.path.parent):
                if (entry.name.startswith(prefix) and entry.name != own
                        and now - entry.stat().st_mtime < _WAITER_FRESH_S):
                    time.sleep(_WAITER_YIELD_S)
                    return

    def _ensure_schema(self, con: duckdb.DuckDBPyConnection, created: bool) -> None:
        # Remembered per path, except that a file this connect created (a store deleted and made
        # again at the same path, say to start over in a notebook) always gets its tables.
        with _schema_guard:
            if self.path in _schema_ready and not created:
                return
            for stmt in _SCHEMA:
                con.execute(stmt)
            _schema_ready.add(self.path)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run a block in one transaction: committed on success, rolled back on any error."""
        with _write_guard(self.path), self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def query(self, sql: str, params: Sequence | None = None) -> pl.DataFrame:
        """Run a read-only query of this module and return a polars frame (internal helper)."""
        with self._connect() as con:
            return con.sql(sql, params=list(params or [])).pl()

    # -- ohlcv ---------------------------------------------------------------------------------
    def read_ohlcv(self, symbol: str, timeframe: str, start: int | None = None,
                   end: int | None = None) -> pl.DataFrame:
        """Return candles ``ts, open, high, low, close, volume`` with ``start <= ts <= end``, by ts.

        ``start``/``end`` are epoch milliseconds (inclusive); ``None`` means unbounded.
        """
        return self.query(
            "SELECT ts, open, high, low, close, volume FROM ohlcv "
            "WHERE symbol = ? AND timeframe = ? AND ts >= ? AND ts <= ? ORDER BY ts",
            [symbol, timeframe, -(2**62) if start is None else int(start),
             2**62 if end is None else int(end)],
        )

    def series(self) -> pl.DataFrame:
        """Return one row per stored series: symbol, timeframe, rows, first_ts, last_ts."""
        return self.query(
            "SELECT symbol, timeframe, count(*) AS rows, min(ts) AS first_ts, max(ts) AS last_ts "
            "FROM ohlcv GROUP BY symbol, timeframe ORDER BY symbol, timeframe")

    def last_ts(self, symbol: str, timeframe: str) -> int | None:
        """Return the newest stored ts of a series, or ``None`` if it has no candles."""
        out = self.query("SELECT max(ts) AS m FROM ohlcv WHERE symbol = ? AND timeframe = ?",
                         [symbol, timeframe])
        return out["m"][0]

    # -- pricemodel cache fingerprint (issue #4) ---------------------------------------------
    def ohlcv_fingerprint(self, symbol: str, timeframe: str, start: int | None = None,
                          end: int | None = None) -> dict:
        """Return ``rows, first_ts, last_ts, content, engine`` of a ts range without reading rows.

        ``content`` is the sum of DuckDB's row hashes (as text): any changed, added or removed
        candle changes it. It is stable for one DuckDB version, which is all a local cache needs.
        """
        out = self.query(
            "SELECT count(*) AS rows, min(ts) AS first_ts, max(ts) AS last_ts, "
            "CAST(coalesce(sum(CAST(hash(ts, open, high, low, close, volume) AS HUGEINT)), 0) "
            "AS VARCHAR) AS content, version() AS engine FROM ohlcv WHERE symbol = ? "
            "AND timeframe = ? "
            "AND ts >= ? AND ts <= ?",
            [symbol, timeframe, -(2**62) if start is None else int(start),
             2**62 if end is None else int(end)])
        return out.row(0, named=True)
    # -- end pricemodel cache fingerprint ------------------------------------------------------

    @staticmethod
    def _insert_ohlcv(con, symbol: str, timeframe: str, candles: pl.DataFrame) -> None:
        with _registered(con, "_incoming", candles.select(OHLCV_COLUMNS).sort("ts")):
            con.execute(
                "INSERT INTO ohlcv SELECT ?, ?, ts, open, high, low, close, volume "
                "FROM _incoming ORDER BY ts", [symbol, timeframe])

    def replace_series(self, symbol: str, timeframe: str, candles: pl.DataFrame,
                       cache_row: dict | None = None) -> None:
        """Atomically replace a series with ``candles`` (sorted by ts) and record the ingest cache.

        Rewriting the whole series keeps the table physically sorted by ts within each series,
        which is what makes range reads fast.
        """
        with self.transaction() as con:
            # the series no longer holds what earlier files added: re-ingesting them must read them
            con.execute("DELETE FROM ingest_cache WHERE symbol = ? AND timeframe = ?",
                        [symbol, timeframe])
            self._write_series(con, symbol, timeframe, candles, cache_row)

    @classmethod
    def _write_series(cls, con, symbol: str, timeframe: str, candles: pl.DataFrame,
                      cache_row: dict | None) -> None:
        """Replace a series and record the ingest cache inside the caller's transaction."""
        con.execute("DELETE FROM ohlcv WHERE symbol = ? AND timeframe = ?", [symbol, timeframe])
        cls._insert_ohlcv(con, symbol, timeframe, candles)
        if cache_row is not None:
            con.execute(
                "INSERT OR REPLACE INTO ingest_cache (content_hash, symbol, timeframe, path, rows)"
                " VALUES (?, ?, ?, ?, ?)",
                [cache_row["content_hash"], symbol, timeframe, str(cache_row["path"]),
                 int(cache_row["rows"])])

    def append_candles(self, symbol: str, timeframe: str, candles: pl.DataFrame) -> None:
        """Atomically append candles newer than the last stored one (the push feed's path).

        Raises
        ------
        DataValidationError : when a candle is not newer than the series' last stored candle
            (checked inside the write transaction, so two writers cannot both append it).
        """
        with self.transaction() as con:
            last = con.sql("SELECT max(ts) AS m FROM ohlcv WHERE symbol = ? AND timeframe = ?",
                           params=[symbol, timeframe]).pl()["m"][0]
            first = candles["ts"].min()
            if last is not None and first is not None and first <= last:
                raise DataValidationError(
                    f"{symbol} {timeframe}: candle at ts {first} is not after the last stored "
                    f"candle {last}", ts=first, rule="append_after_last")
            self._insert_ohlcv(con, symbol, timeframe, candles)

    def cached_ingest(self, content_hash: str, symbol: str, timeframe: str) -> dict | None:
        """Return the ingest-cache row for this content hash and series, or ``None``."""
        out = self.query(
            "SELECT content_hash, path, rows, ingested_at FROM ingest_cache "
            "WHERE content_hash = ? AND symbol = ? AND timeframe = ?",
            [content_hash, symbol, timeframe])
        return out.row(0, named=True) if out.height else None

    # -- ingest merge (issue 2, data part: workbench/data/ingest.py) ---------------------------
    def merge_series(self, symbol: str, timeframe: str,
                     merge: Callable[[pl.DataFrame], pl.DataFrame],
                     cache_row: dict | None = None) -> tuple[int, int]:
        """Atomically replace a series by ``merge(stored candles)`` and record the ingest cache.

        Reading the stored series, merging and writing share one transaction and one hold of the
        file lock, so two processes ingesting into the same series cannot lose each other's rows.
        An exception raised by ``merge`` rolls everything back. Returns (rows before, rows after).
        """
        with self.transaction() as con:
            existing = con.sql(
                "SELECT ts, open, high, low, close, volume FROM ohlcv "
                "WHERE symbol = ? AND timeframe = ? ORDER BY ts", params=[symbol, timeframe]).pl()
            candles = merge(existing)
            self._write_series(con, symbol, timeframe, candles, cache_row)
        return existing.height, candles.height

    def read_ts(self, symbol: str, timeframe: str) -> pl.DataFrame:
        """Return only the ``ts`` column of a series, by ts (for gap reports)."""
        return self.query("SELECT ts FROM ohlcv WHERE symbol = ? AND timeframe = ? ORDER BY ts",
                          [symbol, timeframe])
    # -- end ingest merge ----------------------------------------------------------------------

    # -- indicators ----------------------------------------------------------------------------
    def replace_indicators(self, symbol: str, timeframe: str, frame: pl.DataFrame) -> None:
        """Atomically replace the persisted indicator columns of a series."""
        cols = [c for c in frame.columns if c != "ts"]
        unknown = sorted(set(cols) - set(INDICATOR_COLUMNS))
        if unknown:
            raise ParameterError(f"indicator column(s) {unknown} are not in the indicators table; "
                                 f"known: {list(INDICATOR_COLUMNS)}")
        names = ", ".join(["ts", *cols])  # checked against the schema above
        with self.transaction() as con:
            con.execute("DELETE FROM indicators WHERE symbol = ? AND timeframe = ?",
                        [symbol, timeframe])
            with _registered(con, "_ind", frame):
                con.execute(f"INSERT INTO indicators (symbol, timeframe, {names}) "  # noqa: S608
                            f"SELECT ?, ?, {names} FROM _ind ORDER BY ts", [symbol, timeframe])

    def read_indicators(self, symbol: str, timeframe: str) -> pl.DataFrame:
        """Return the persisted indicator columns of a series, by ts."""
        return self.query("SELECT * EXCLUDE (symbol, timeframe) FROM indicators "
                          "WHERE symbol = ? AND timeframe = ? ORDER BY ts", [symbol, timeframe])

    # -- pivots --------------------------------------------------------------------------------
    def replace_pivots(self, symbol: str, timeframe: str, pivots: pl.DataFrame) -> None:
        """Atomically replace the stored pivots of a series.

        ``pivots`` has columns ts, confirmed_ts, price, pivot_type, level, strength.
        """
        with self.transaction() as con:
            con.execute("DELETE FROM pivot_points WHERE symbol = ? AND timeframe = ?",
                        [symbol, timeframe])
            if pivots.height:
                with _registered(con, "_piv", pivots):
                    con.execute(
                        "INSERT INTO pivot_points SELECT ?, ?, ts, confirmed_ts, price, pivot_type,"
                        " level, strength FROM _piv ORDER BY ts", [symbol, timeframe])

    def read_pivots(self, symbol: str, timeframe: str, *, confirmed_until: int | None = None,
                    max_level: int | None = None) -> pl.DataFrame:
        """Return stored pivots known by ``confirmed_until`` (confirmed_ts <= it), by pivot ts."""
        return self.query(
            "SELECT ts, confirmed_ts, price, pivot_type, level, strength FROM pivot_points "
            "WHERE symbol = ? AND timeframe = ? AND confirmed_ts <= ? AND level <= ? "
            "ORDER BY ts, level",
            [symbol, timeframe, 2**62 if confirmed_until is None else int(confirmed_until),
             1_000 if max_level is None else int(max_level)])

    # -- annotations ---------------------------------------------------------------------------
    def add_annotations(self, symbol: str, timeframe: str, rows: pl.DataFrame) -> int:
        """Insert or replace annotations (columns ts, action, source); returns the row count."""
        if rows.height == 0:
            return 0
        for column, allowed in (("action", ACTIONS), ("source", ANNOTATION_SOURCES)):
            bad = rows.filter(~pl.col(column).is_in(list(allowed)))
            if bad.height:
                raise ParameterError(f"annotation at ts {bad['ts'][0]}: {column} "
                                     f"{bad[column][0]!r} is not one of {allowed}")
        with self.transaction() as con:
            with _registered(con, "_ann", rows.select("ts", "action", "source")):
                con.execute(
                    "INSERT OR REPLACE INTO annotations (symbol, timeframe, ts, action, source) "
                    "SELECT ?, ?, ts, action, source FROM _ann", [symbol, timeframe])
        return rows.height

    def read_annotations(self, symbol: str, timeframe: str, start: int | None = None,
                         end: int | None = None,
                         sources: Sequence[str] = ANNOTATION_SOURCES) -> pl.DataFrame:
        """Return annotations ``ts, action, source, created_at`` in a ts range, by ts."""
        return self.query(
            "SELECT ts, action, source, created_at FROM annotations "
            "WHERE symbol = ? AND timeframe = ? AND ts >= ? AND ts <= ? "
            "AND list_contains(?, source) ORDER BY ts, source",
            [symbol, timeframe, -(2**62) if start is None else int(start),
             2**62 if end is None else int(end), list(sources)])

    # -- backtests -----------------------------------------------------------------------------
    def save_backtest(self, row: dict) -> None:
        """Insert one backtest summary row (see the ``backtest_results`` columns)."""
        row = dict(row)
        if isinstance(row.get("params"), dict):
            row["params"] = json.dumps(row["params"], sort_keys=True)
        cols = list(row)
        unknown = sorted(set(cols) - set(BACKTEST_COLUMNS))
        if unknown:
            raise ParameterError(f"backtest field(s) {unknown} are not backtest_results columns; "
                                 f"known: {list(BACKTEST_COLUMNS)}")
        with self.transaction() as con:
            con.execute(
                f"INSERT OR REPLACE INTO backtest_results ({', '.join(cols)}) "  # noqa: S608
                f"VALUES ({', '.join('?' for _ in cols)})", [row[c] for c in cols])

    def backtests(self, run_id: str | None = None) -> pl.DataFrame:
        """Return stored backtest summaries, newest first, optionally for one run."""
        if run_id is None:
            return self.query("SELECT * FROM backtest_results ORDER BY created_at DESC")
        return self.query("SELECT * FROM backtest_results WHERE run_id = ? "
                          "ORDER BY created_at DESC", [run_id])

    # -- prediction ledger (issue 5, used by workbench/live/ledger.py) -------------------------
    # actual_* and pred_* are percent relative to the close of the window's last candle;
    # realised_move is actual_close. A prediction is a hit when predicted_action equals the
    # realised action: BUY above +hold_band, SELL below -hold_band, else HOLD.
    LEDGER_COLUMNS = (
        "inference_id", "session_id", "run_id", "model_version", "symbol", "timeframe",
        "prediction_ts", "target_ts", "data_range_start", "data_range_end", "predicted_action",
        "confidence", "pred_open", "pred_high", "pred_low", "pred_close", "actual_open",
        "actual_high", "actual_low", "actual_close", "realised_move", "pivot_type",
        "pivot_confirmed_ts")
    _LEDGER_SCORED = (
        "WITH scored AS (SELECT *, CASE WHEN realised_move > ? THEN 'BUY' "
        "WHEN realised_move < -? THEN 'SELL' ELSE 'HOLD' END AS realised_action "
        "FROM prediction_ledger WHERE realised_move IS NOT NULL "
        "AND (run_id = ? OR CAST(? AS VARCHAR) IS NULL)) ")

    def append_ledger(self, rows: pl.DataFrame) -> int:
        """Insert prediction-ledger rows (columns :attr:`LEDGER_COLUMNS`) in one transaction."""
        if rows.height == 0:
            return 0
        cols = ", ".join(self.LEDGER_COLUMNS)
        with self.transaction() as con:
            with _registered(con, "_ledger", rows.select(self.LEDGER_COLUMNS)):
                con.execute(f"INSERT INTO prediction_ledger ({cols}) "  # noqa: S608 - constants
                            f"SELECT {cols} FROM _ledger")
        return rows.height

    def read_ledger(self, run_id: str | None = None) -> pl.DataFrame:
        """Return ledger rows (optionally of one run) ordered by prediction_ts, inference_id."""
        return self.query("SELECT * FROM prediction_ledger WHERE run_id = ? OR "
                          "CAST(? AS VARCHAR) IS NULL ORDER BY prediction_ts, inference_id",
                          [run_id, run_id])

    def ledger_hit_rates(self, run_id: str | None = None, hold_band: float = 0.05) -> pl.DataFrame:
        """Per model version and predicted action: n, hits, hit_rate, mean_confidence."""
        return self.query(
            self._LEDGER_SCORED + "SELECT model_version, predicted_action, count(*) AS n, "
            "sum(CAST(predicted_action = realised_action AS INTEGER)) AS hits, "
            "avg(CAST(predicted_action = realised_action AS DOUBLE)) AS hit_rate, "
            "avg(confidence) AS mean_confidence FROM scored "
            "GROUP BY model_version, predicted_action ORDER BY model_version, predicted_action",
            [hold_band, hold_band, run_id, run_id])

    def ledger_calibration(self, run_id: str | None = None, hold_band: float = 0.05,
                           bucket_width: float = 0.1) -> pl.DataFrame:
        """Per model version and confidence bucket [lo, lo + width): n, mean confidence, accuracy."""
        return self.query(
            self._LEDGER_SCORED + "SELECT model_version, "
            "least(floor(confidence / ? + 1e-9), ceil(1 / ?) - 1) * ? AS bucket_lo, "
            "count(*) AS n, avg(confidence) AS mean_confidence, "
            "avg(CAST(predicted_action = realised_action AS DOUBLE)) AS accuracy FROM scored "
            "GROUP BY ALL ORDER BY model_version, bucket_lo",
            [hold_band, hold_band, run_id, run_id, bucket_width, bucket_width, bucket_width])

    def ledger_candle_errors(self, run_id: str | None = None) -> pl.DataFrame:
        """Per model version: mean absolute error of each predicted OHLC value (percent points)
        and the RMSE of the predicted close, over frames whose target candle is known."""
        return self.query(
            "SELECT model_version, count(*) AS n, avg(abs(pred_open - actual_open)) AS mae_open, "
            "avg(abs(pred_high - actual_high)) AS mae_high, "
            "avg(abs(pred_low - actual_low)) AS mae_low, "
            "avg(abs(pred_close - actual_close)) AS mae_close, "
            "sqrt(avg((pred_close - actual_close) ^ 2)) AS rmse_close "
            "FROM prediction_ledger WHERE actual_close IS NOT NULL "
            "AND (run_id = ? OR CAST(? AS VARCHAR) IS NULL) "
            "GROUP BY model_version ORDER BY model_version", [run_id, run_id])
    # -- end of prediction ledger --------------------------------------------------------------
