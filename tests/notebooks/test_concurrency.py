"""Notebooks run while another process keeps writing to the same store (no lock error reaches
anyone): the store's short-connection, retry design seen from the notebook side."""
from __future__ import annotations

import subprocess
import sys
import time

from workbench.ui.notebooks import run_suite

# appends annotations in short transactions until the stop file appears; prints batches written
WRITER = """
import os, sys
import polars as pl
from workbench.data.store import Store
store, stop, n = Store(sys.argv[1]), sys.argv[2], 0
base = int(store.read_ohlcv("ETH/USDT", "1m")["ts"][0])
while not os.path.exists(stop):
    ts = [base + 60_000 * (n * 10 + k) for k in range(10)]
    store.add_annotations("ETH/USDT", "1m", pl.DataFrame(
        {"ts": ts, "action": ["BUY"] * 10, "source": ["rule"] * 10}))
    n += 1
print(n)
"""


def test_notebooks_run_while_another_process_writes(tmp_path, eth_slice):
    from workbench.data.store import Store

    db, stop = tmp_path / "wb.duckdb", tmp_path / "stop"
    Store(db).replace_series("ETH/USDT", "1m", eth_slice)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # the writer is busy before the notebooks start
        # 01_data ingests the shipped series into the same file (a second writer) and reads it;
        # the control panel reads the series list and draws the range
        result = run_suite(["01_data", "00_control_panel"], reports_root=tmp_path / "reports",
                           env={"WORKBENCH_DB": str(db), "WORKBENCH_RUNS": str(tmp_path / "r")},
                           timeout=300)
        alive = writer.poll() is None
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=120)
    assert alive, f"the writer died while the notebooks ran: {err[-2000:]}"
    assert writer.returncode == 0, err[-2000:]
    assert int(out.strip()) > 0
    assert result.ok, [r.error for r in result.results]
    assert result.results[0].records["candles"] == 130_708
    assert Store(db).read_annotations("ETH/USDT", "1m").height == 10 * int(out.strip())
