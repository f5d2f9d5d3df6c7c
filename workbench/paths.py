"""Where the workbench keeps things on disk.

The database path is resolved in this order: an explicit argument (the CLI's ``--db``), the
``WORKBENCH_DB`` environment variable, then ``data/workbench.duckdb`` under the project root.
Run artifacts live in ``data/runs/`` next to the database; both are git-ignored.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
REPORTS_DIR = PROJECT_ROOT / "reports"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
CONFIGS_DIR = PROJECT_ROOT / "configs"
DEFAULT_DB = DATA_DIR / "workbench.duckdb"

#: the real series shipped with the project: (file, symbol, timeframe)
SHIPPED_SERIES = (
    ("binance_ethusdt_1m.parquet", "ETH/USDT", "1m"),
    ("binance_btcusdt_1m.parquet", "BTC/USDT", "1m"),
    ("goog_1d.parquet", "GOOG", "1d"),
    ("eurusd_1h.parquet", "EUR/USD", "1h"),
    ("btcusd_1mo.parquet", "BTC/USD", "1M"),
)


def resolve_db_path(db: str | os.PathLike | None = None) -> Path:
    """Return the database path: ``db``, else ``$WORKBENCH_DB``, else ``data/workbench.duckdb``."""
    if db:
        return Path(db).expanduser().resolve()
    env = os.environ.get("WORKBENCH_DB")
    if env:
        return Path(env).expanduser().resolve()
    return DEFAULT_DB


def runs_dir(db_path: str | os.PathLike | None = None) -> Path:
    """Return the folder holding run artifacts: ``runs/`` beside the resolved database."""
    override = os.environ.get("WORKBENCH_RUNS")
    if override:
        return Path(override).expanduser().resolve()
    return resolve_db_path(db_path).parent / "runs"
