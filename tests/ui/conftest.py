"""Fixtures of the UI tests: a real ETH slice in a DuckDB file and one quick-trained model.

Model training is the slow part, so the runs folder is shared by the tests of a worker (this
overrides the per-test ``_isolated_runs`` of tests/conftest.py) and the model is trained once.
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory):
    return tmp_path_factory.mktemp("ui-runs")


@pytest.fixture(autouse=True)
def _isolated_runs(shared_runs, monkeypatch):
    """One runs folder for every UI test of this worker (the quick model is trained once)."""
    monkeypatch.setenv("WORKBENCH_RUNS", str(shared_runs))


@pytest.fixture(scope="session")
def ui_db(tmp_path_factory, eth_slice):
    """A DuckDB file holding the real 3,000-candle ETH/USDT 1m slice, plus the same candles
    resampled to 5m (a series the 1m model was not trained on) and 1d (3 candles: shorter than
    any model's window), and the last 400 real GOOG 1d candles (a paced replay waits a day per
    candle at 1x: what Stop must interrupt)."""
    import polars as pl

    from workbench.data.resample import resample_ohlcv
    from workbench.data.store import Store
    from workbench.paths import DATA_DIR

    path = tmp_path_factory.mktemp("ui-db") / "wb.duckdb"
    store = Store(path)
    store.replace_series("ETH/USDT", "1m", eth_slice)
    for tf in ("5m", "1d"):
        store.replace_series("ETH/USDT", tf, resample_ohlcv(eth_slice, "1m", tf))
    store.replace_series("GOOG", "1d", pl.read_parquet(DATA_DIR / "goog_1d.parquet").tail(400))
    return path


@pytest.fixture(scope="session")
def quick_model(ui_db, shared_runs):
    """Run id of a one-epoch quick transformer trained on the slice (torch, one thread)."""
    import torch

    from workbench.data.store import Store
    from workbench.train.runs import train
    from workbench.ui import prepare

    torch.set_num_threads(1)
    old = os.environ.get("WORKBENCH_RUNS")
    os.environ["WORKBENCH_RUNS"] = str(shared_runs)
    try:
        store = Store(ui_db)
        record = train(prepare.quick_config(store, "ETH/USDT", "1m", epochs=1, max_windows=400))
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_RUNS", None)
        else:
            os.environ["WORKBENCH_RUNS"] = old
    assert record["status"] == "completed"
    return record["run_id"]
