"""Shared fixtures: small real slices of the shipped market data and throw-away stores."""
from __future__ import annotations

import os

# Two busy torch/BLAS threads per xdist worker collapse on 2 cores; one each is fastest.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import polars as pl  # noqa: E402
import pytest  # noqa: E402

from workbench.paths import DATA_DIR  # noqa: E402

ETH_FILE = DATA_DIR / "binance_ethusdt_1m.parquet"
BTC_FILE = DATA_DIR / "binance_btcusdt_1m.parquet"


@pytest.fixture(scope="session")
def eth_1m() -> pl.DataFrame:
    """The full shipped ETH/USDT 1m series (130,708 real candles)."""
    return pl.read_parquet(ETH_FILE)


@pytest.fixture(scope="session")
def eth_slice(eth_1m) -> pl.DataFrame:
    """A 3,000-candle real slice of ETH/USDT 1m (about two days)."""
    return eth_1m.slice(20_000, 3_000)


@pytest.fixture
def tmp_store(tmp_path: Path):
    """An empty Store on a fresh DuckDB file."""
    from workbench.data.store import Store

    return Store(tmp_path / "wb.duckdb")


@pytest.fixture
def eth_store(tmp_store, eth_slice):
    """A Store holding the 3,000-candle ETH/USDT 1m slice as series ('ETH/USDT', '1m')."""
    tmp_store.replace_series("ETH/USDT", "1m", eth_slice)
    return tmp_store


@pytest.fixture
def exchange_sim(tmp_path):
    """Start ``workbench exchange-sim`` (its own process, 127.0.0.1, a free port).

    Call ``exchange_sim(candles, symbol, timeframe, *options)`` with a candle frame and the
    command's options (``--speed``, ``--faults``, ``--start-index``, ...); it returns the base URL
    the real ccxt client is pointed at. Every simulator started is terminated at teardown.
    """
    import subprocess
    import sys

    procs = []

    def start(candles: pl.DataFrame, symbol: str, timeframe: str, *options) -> str:
        path = tmp_path / f"exchange-sim-{len(procs)}.parquet"
        candles.write_parquet(path)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [os.getcwd(), *filter(None, [os.environ.get("PYTHONPATH")])])}
        proc = subprocess.Popen(
            [sys.executable, "-c", "from workbench.cli import main; main()", "exchange-sim",
             "--data", str(path), "--symbol", symbol, "--timeframe", timeframe, "--port", "0",
             *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        procs.append(proc)
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            proc.kill()
            raise AssertionError(f"exchange-sim did not start: {line}{proc.stderr.read()}")
        return line.split()[2]

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(autouse=True)
def _isolated_runs(tmp_path, monkeypatch):
    """Keep run artifacts of every test under its own tmp folder, never in data/runs/."""
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))


@pytest.fixture
def file_opens(monkeypatch) -> list:
    """Record every open of a store's DuckDB file (the real open still happens)."""
    from workbench.data.store.connection import StoreConnection

    opened, connect = [], StoreConnection._connect

    def counting(self):
        opened.append(self.path)
        return connect(self)

    monkeypatch.setattr(StoreConnection, "_connect", counting)
    return opened
