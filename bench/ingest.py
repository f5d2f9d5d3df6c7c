"""Ingest throughput for 1M candles: parse + validate versus the store write, in one run.

The 1M-row file is the real ETH/USDT 1m series tiled end to end (each tile's ts shifted past the
previous one), so prices, volumes and steps are real. Stages, each best of several repeats:

* ``hash``: sha256 of the file bytes (the cache key);
* ``parse_validate``: :func:`read_candles` + :func:`validate_candles` (every rule);
* ``store_write``: :meth:`Store.merge_series` into an empty DuckDB file (one transaction);
* ``ingest_file``: the whole public call on a fresh store (hash + parse + validate + write);
* ``cached``: the same call when the file is already ingested (hash + one cache lookup).

Goal (issue 2): >= 5M rows/s including validation. A CSV copy of the file is timed too.

Run: ``.venv/bin/python bench/ingest.py``; writes ``reports/bench/ingest.json``.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import polars as pl

from workbench.data.ingest import file_hash, ingest_file, read_candles, validate_candles
from workbench.data.store import Store
from workbench.paths import DATA_DIR

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, write_report  # noqa: E402

ROWS = 1_000_000
GOAL_ROWS_PER_S = 5_000_000


def tiled_series(rows: int = ROWS) -> pl.DataFrame:
    """Real ETH/USDT 1m candles repeated end to end until ``rows`` candles, contiguous in ts."""
    eth = pl.read_parquet(DATA_DIR / "binance_ethusdt_1m.parquet")
    span = eth["ts"][-1] - eth["ts"][0] + 60_000
    tiles = [eth.with_columns(pl.col("ts") + k * span) for k in range(rows // eth.height + 1)]
    return pl.concat(tiles).head(rows)


def _parse_validate(path: Path):
    return validate_candles(read_candles(path), "1m", str(path))


def _fresh_db(tmp: Path, tag: str, k: list) -> Path:
    k[0] += 1
    return tmp / f"{tag}_{k[0]}.duckdb"


def _store_write(tmp: Path, clean: pl.DataFrame, k: list) -> int:
    store = Store(_fresh_db(tmp, "write", k))
    return store.merge_series("ETH/USDT", "1m", lambda existing: clean)[1]


def _fresh_ingest(tmp: Path, path: Path, k: list):
    return ingest_file(Store(_fresh_db(tmp, "ingest", k)), path, "ETH/USDT", "1m")


def bench_file(tmp: Path, path: Path, repeats: int) -> dict:
    tmp = tmp / path.suffix.lstrip(".")
    tmp.mkdir()
    counter = [0]
    t_hash, _ = best_of(lambda: file_hash(path), repeats)
    t_pv, (clean, report) = best_of(lambda: _parse_validate(path), repeats)
    assert report.rows_out == ROWS and report.gaps == 0
    t_write, written = best_of(lambda: _store_write(tmp, clean, counter), repeats)
    assert written == ROWS
    t_ingest, summary = best_of(lambda: _fresh_ingest(tmp, path, counter), repeats)
    store = Store(tmp / f"ingest_{counter[0]}.duckdb")
    t_cached, hit = best_of(lambda: ingest_file(store, path, "ETH/USDT", "1m"), repeats)
    assert summary.rows_added == ROWS and hit.status == "cached"
    return {"file": path.suffix.lstrip("."), "bytes": path.stat().st_size, "rows": ROWS,
            "hash_s": t_hash, "parse_validate_s": t_pv, "store_write_s": t_write,
            "ingest_file_s": t_ingest, "cached_s": t_cached,
            "parse_validate_rows_per_s": ROWS / t_pv, "store_write_rows_per_s": ROWS / t_write,
            "ingest_file_rows_per_s": ROWS / t_ingest,
            "write_over_parse_validate": t_write / t_pv,
            "goal_parse_validate_met": ROWS / t_pv >= GOAL_ROWS_PER_S}


def _print(r: dict) -> None:
    print(f"\n{r['file']} ({r['bytes'] / 1e6:.1f} MB, {r['rows']:,} candles)")
    print(f"  hash            {r['hash_s'] * 1e3:8.1f} ms")
    print(f"  parse+validate  {r['parse_validate_s'] * 1e3:8.1f} ms  "
          f"{r['parse_validate_rows_per_s'] / 1e6:6.2f} M rows/s  (goal 5 M rows/s: "
          f"{'met' if r['goal_parse_validate_met'] else 'NOT met'})")
    print(f"  store write     {r['store_write_s'] * 1e3:8.1f} ms  "
          f"{r['store_write_rows_per_s'] / 1e6:6.2f} M rows/s  "
          f"({r['write_over_parse_validate']:.1f}x parse+validate)")
    print(f"  ingest_file     {r['ingest_file_s'] * 1e3:8.1f} ms  "
          f"{r['ingest_file_rows_per_s'] / 1e6:6.2f} M rows/s end to end")
    print(f"  cached re-run   {r['cached_s'] * 1e3:8.1f} ms  "
          f"({r['ingest_file_s'] / r['cached_s']:.0f}x faster than ingesting)")


def main(repeats: int = 5) -> dict:
    frame = tiled_series()
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as d:
        tmp = Path(d)
        parquet, csv = tmp / "eth_1m_tiled.parquet", tmp / "eth_1m_tiled.csv"
        frame.write_parquet(parquet)
        frame.write_csv(csv)
        results = [bench_file(tmp, parquet, repeats), bench_file(tmp, csv, max(1, repeats - 1))]
    print(f"ingest of {ROWS:,} real ETH/USDT 1m candles (tiled), best of {repeats}")
    for r in results:
        _print(r)
    return write_report("ingest", {"series": "ETH/USDT 1m tiled to 1M rows", "results": results,
                                   "goal_rows_per_s": GOAL_ROWS_PER_S})


if __name__ == "__main__":
    main()
