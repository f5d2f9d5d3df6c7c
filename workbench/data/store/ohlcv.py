"""Candle queries: range reads, atomic series writes, the ingest cache and the cache fingerprint.

Every write replaces or appends inside one transaction, so a reader never sees half a series.
"""
from __future__ import annotations

from typing import Callable

import polars as pl

from workbench.data.guards import check_symbol, refuse_non_finite, refuse_unwritable_ts
from workbench.data.store.connection import registered
from workbench.data.store.schema import OHLCV_COLUMNS
from workbench.errors import DataValidationError


class OhlcvQueries:
    """Methods of :class:`~workbench.data.store.Store` on the ``ohlcv`` and ``ingest_cache`` tables."""

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

    # -- write guards: every path that stores candles -----------------------------------------
    @staticmethod
    def _refuse_bad_candles(symbol: str, timeframe: str, candles: pl.DataFrame) -> None:
        """Refuse a nameless series, non-finite values and ts no date can be written for.

        Ingest checks far more; this is the floor every write path (append, resample, replace)
        stands on, so that nothing stored can break a later read or report.
        """
        check_symbol(symbol)
        source = f"{symbol} {timeframe}"
        refuse_non_finite(candles, OHLCV_COLUMNS[1:], source)
        refuse_unwritable_ts(candles, source)

    @classmethod
    def _insert_ohlcv(cls, con, symbol: str, timeframe: str, candles: pl.DataFrame) -> None:
        """Insert candles sorted by ts, so a series stays physically ordered for range reads."""
        cls._refuse_bad_candles(symbol, timeframe, candles)
        with registered(con, "_incoming", candles.select(OHLCV_COLUMNS).sort("ts")):
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

    # -- delete a series or a range (workbench data delete) -------------------------------------
    _DERIVED_TABLES = ("pivot_points", "indicators")

    def delete_series(self, symbol: str, timeframe: str, start: int | None = None,
                      end: int | None = None, *, dry_run: bool = False) -> dict:
        """Delete candles of a series with ``start <= ts <= end`` (None: unbounded), atomically.

        Pivots and indicators are computed from the whole series, so once a candle goes they are
        stale: all of the series' derived rows and its ingest-cache rows (so that re-ingesting a
        file reads it again) go with them. Annotations (labels a user made) are kept. Returns
        the counts ``candles``, ``pivot_points``, ``indicators``, ``ingest_cache`` deleted (or,
        with ``dry_run``, that would be) and ``candles_left``.
        """
        where = "symbol = ? AND timeframe = ?"
        key = [symbol, timeframe]
        span = [-(2**63) if start is None else int(start), 2**63 - 1 if end is None else int(end)]
        with self.transaction() as con:
            def count(table: str, extra: str = "", params=()) -> int:
                sql = f"SELECT count(*) FROM {table} WHERE {where}{extra}"  # noqa: S608
                return con.execute(sql, [*key, *params]).fetchone()[0]
            stored = count("ohlcv")
            doomed = count("ohlcv", " AND ts BETWEEN ? AND ?", span)
            whole = start is None and end is None
            out = {"candles": doomed}
            for table in (*self._DERIVED_TABLES, "ingest_cache"):
                out[table] = count(table) if doomed or whole else 0
            out["candles_left"] = stored - doomed
            if not dry_run:
                con.execute(f"DELETE FROM ohlcv WHERE {where} AND ts BETWEEN ? AND ?",  # noqa: S608
                            [*key, *span])
                for table in (*self._DERIVED_TABLES, "ingest_cache"):
                    if out[table]:
                        con.execute(f"DELETE FROM {table} WHERE {where}", key)  # noqa: S608
        return out

    def read_ts(self, symbol: str, timeframe: str) -> pl.DataFrame:
        """Return only the ``ts`` column of a series, by ts (for gap reports)."""
        return self.query("SELECT ts FROM ohlcv WHERE symbol = ? AND timeframe = ? ORDER BY ts",
                          [symbol, timeframe])
