"""Regression: ``--db`` was lost after ``train``.

``workbench --db X train`` wrote its run beside X, but ``live`` and ``backtest`` loaded the run
from the default ``data/runs`` and failed with "run has no config.json". The autouse
``WORKBENCH_RUNS`` fixture hid it, so this test removes that variable (and ``WORKBENCH_DB``) and
drives the real CLI in fresh processes.
"""
from __future__ import annotations

import json

import yaml

from tests.train.conftest import TINY, cli
from workbench.paths import DATA_DIR


def _tree(root) -> dict:
    """Every file under ``root`` with its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_db_flag_reaches_train_live_and_backtest_without_env(tmp_path, eth_slice, monkeypatch):
    monkeypatch.delenv("WORKBENCH_DB", raising=False)
    monkeypatch.delenv("WORKBENCH_RUNS", raising=False)
    db = tmp_path / "elsewhere" / "wb.duckdb"
    candles = tmp_path / "eth.parquet"
    eth_slice.write_parquet(candles)
    config = tmp_path / "tiny.yaml"  # no data.db: the run must take the store of --db
    config.write_text(yaml.safe_dump(TINY))
    before = _tree(DATA_DIR)
    series = ("--symbol", "ETH/USDT", "--timeframe", "1m")
    last = int(eth_slice["ts"][-1])
    window = ("--start", str(int(eth_slice["ts"][-200])), "--end", str(last))

    cli("--db", str(db), "data", "ingest", str(candles), *series)
    run = json.loads(cli("--db", str(db), "train", "-c", str(config), "--json").stdout)
    assert run["status"] == "completed"
    run_dir = db.parent / "runs" / run["run_id"]
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    live = json.loads(cli("--db", str(db), "live", "--model", run["run_id"], *series, *window,
                          "--json").stdout)
    assert live["candles"] == 200 and live["predictions"] > 0
    backtest = json.loads(cli("--db", str(db), "backtest", "--model", run["run_id"], *series,
                              *window, "--json").stdout)
    assert backtest["backtest_id"] and list((run_dir / "backtests").iterdir())
    listed = json.loads(cli("--db", str(db), "runs", "list", "--json").stdout)
    assert [r["run_id"] for r in listed] == [run["run_id"]]
    assert _tree(DATA_DIR) == before  # nothing went to the project's default data folder
