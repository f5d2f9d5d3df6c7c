"""A process of the multi-process store test: ``python -m tests.data._concurrency_worker ROLE ...``.

writer DB SECONDS FILE...  ingests the files in order, then re-ingests the last one with
                           --force-refresh until SECONDS have passed; then creates DB.done;
reader DB REF              reads the series in a loop, until DB.done exists and it has read at
                           least MIN_READS times, and checks every read against REF (the parquet
                           holding the full expected series).
Each prints one JSON line: counts seen, number of operations and any error text.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

MIN_READS = 3
HARD_LIMIT_S = 90.0


def writer(db: str, seconds: float, files: list[str]) -> dict:
    from workbench.data.ingest import ingest_file
    from workbench.data.store import Store

    store, done, errors = Store(db), 0, []
    deadline = time.monotonic() + seconds
    try:
        for f in files:
            ingest_file(store, f, "ETH/USDT", "1m")
            done += 1
        while time.monotonic() < deadline:
            ingest_file(store, files[-1], "ETH/USDT", "1m", force_refresh=True)
            done += 1
    except Exception:  # the test asserts there is none; report it instead of dying silently
        errors.append(traceback.format_exc())
    Path(db + ".done").touch()
    return {"ops": done, "errors": errors}


def reader(db: str, ref_path: str) -> dict:
    import polars as pl

    from workbench.data.store import Store

    store, ref = Store(db), pl.read_parquet(ref_path)
    counts, errors, ops = [], [], 0
    done, hard_stop = Path(db + ".done"), time.monotonic() + HARD_LIMIT_S
    while not (done.exists() and ops >= MIN_READS) and time.monotonic() < hard_stop:
        try:
            got = store.read_ohlcv("ETH/USDT", "1m")
            store.series()
        except Exception:
            errors.append(traceback.format_exc())
            continue
        ops += 1
        counts.append(got.height)
        if not got.equals(ref.head(got.height)):
            errors.append(f"inconsistent read of {got.height} rows")
    return {"ops": ops, "counts": sorted(set(counts)), "sequence_monotonic":
            all(a <= b for a, b in zip(counts, counts[1:])), "errors": errors}


if __name__ == "__main__":
    role, db, *rest = sys.argv[1:]
    result = writer(db, float(rest[0]), rest[1:]) if role == "writer" else reader(db, rest[0])
    print(json.dumps(result))
