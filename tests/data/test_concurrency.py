"""Several real processes on one DuckDB file: one ingesting, two reading, no lock error ever.

This is the situation of a notebook kernel ingesting while another kernel and a dashboard read.
"""
from __future__ import annotations

import json
import subprocess
import sys

from workbench.paths import PROJECT_ROOT

STEP, FILES, SECONDS = 200, 8, 4.0


def test_one_writer_two_readers_never_see_lock_errors_or_partial_series(eth_slice, tmp_path):
    full = eth_slice.head(STEP * FILES)
    files = []
    for k in range(1, FILES + 1):
        path = tmp_path / f"prefix_{k}.parquet"
        full.head(STEP * k).write_parquet(path)  # each file adds STEP candles to the last
        files.append(str(path))
    ref = tmp_path / "ref.parquet"
    full.write_parquet(ref)
    db = str(tmp_path / "shared.duckdb")
    cmd = [sys.executable, "-m", "tests.data._concurrency_worker"]
    procs = [subprocess.Popen([*cmd, "reader", db, str(ref)], cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    procs.append(subprocess.Popen([*cmd, "writer", db, str(SECONDS), *files], cwd=PROJECT_ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "Could not set lock" not in out + err
        results.append(json.loads(out.strip().splitlines()[-1]))
    *readers, writer = results
    assert writer["errors"] == [] and writer["ops"] >= FILES
    committed = {0} | {STEP * k for k in range(1, FILES + 1)}
    for r in readers:
        assert r["errors"] == []
        assert r["ops"] >= 3  # readers run until the writer is done and they read 3 times
        assert set(r["counts"]) <= committed
        assert r["sequence_monotonic"]
    from workbench.data.store import Store

    assert Store(db).read_ohlcv("ETH/USDT", "1m").equals(full)
