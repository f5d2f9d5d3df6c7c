"""The tables of the store: every column list is defined here once and the DDL is built from it.

The annotation CHECK clauses come from the shared vocabulary (:mod:`workbench.actions`), so a
new action or label source is one edit there, not a schema edit here.
"""
from __future__ import annotations

import polars as pl

from workbench.actions import ANNOTATION_SOURCES, action_check_sql

OHLCV_COLUMNS = ("ts", "open", "high", "low", "close", "volume")

#: the prediction ledger, one row per inference frame, the outcome filled in once known:
#: (column, SQL type, polars dtype). actual_* and pred_* are percent relative to the close of the
#: window's last candle; realised_move is actual_close.
LEDGER_FIELDS = (
    ("inference_id", "VARCHAR NOT NULL", pl.String), ("session_id", "VARCHAR", pl.String),
    ("run_id", "VARCHAR", pl.String), ("model_version", "BIGINT", pl.Int64),
    ("symbol", "VARCHAR NOT NULL", pl.String), ("timeframe", "VARCHAR NOT NULL", pl.String),
    ("prediction_ts", "BIGINT NOT NULL", pl.Int64), ("target_ts", "BIGINT NOT NULL", pl.Int64),
    ("data_range_start", "BIGINT NOT NULL", pl.Int64),
    ("data_range_end", "BIGINT NOT NULL", pl.Int64),
    ("predicted_action", "VARCHAR", pl.String), ("confidence", "DOUBLE", pl.Float64),
    ("pred_open", "DOUBLE", pl.Float64), ("pred_high", "DOUBLE", pl.Float64),
    ("pred_low", "DOUBLE", pl.Float64), ("pred_close", "DOUBLE", pl.Float64),
    ("actual_open", "DOUBLE", pl.Float64), ("actual_high", "DOUBLE", pl.Float64),
    ("actual_low", "DOUBLE", pl.Float64), ("actual_close", "DOUBLE", pl.Float64),
    ("realised_move", "DOUBLE", pl.Float64), ("pivot_type", "VARCHAR", pl.String),
    ("pivot_confirmed_ts", "BIGINT", pl.Int64),
)
LEDGER_COLUMNS = tuple(name for name, _, _ in LEDGER_FIELDS)
#: polars schema of ledger rows (the live ledger buffers rows in this shape)
LEDGER_SCHEMA = {name: dtype for name, _, dtype in LEDGER_FIELDS}

#: indicator columns persisted per candle (computed by :mod:`workbench.features.indicators`)
INDICATOR_TABLE_COLUMNS = ("returns", "log_returns", "sma_10", "sma_20", "sma_50", "ema_10",
                           "ema_20", "ema_50", "rsi_14", "atr_14", "volume_z")

BACKTEST_FIELDS = (
    ("backtest_id", "VARCHAR PRIMARY KEY"), ("run_id", "VARCHAR"),
    ("symbol", "VARCHAR NOT NULL"), ("timeframe", "VARCHAR NOT NULL"), ("start_ts", "BIGINT"),
    ("end_ts", "BIGINT"), ("created_at", "TIMESTAMP NOT NULL DEFAULT current_timestamp"),
    ("final_equity", "DOUBLE"), ("pnl", "DOUBLE"), ("return_pct", "DOUBLE"),
    ("n_trades", "BIGINT"), ("win_rate", "DOUBLE"), ("max_drawdown", "DOUBLE"),
    ("sharpe", "DOUBLE"), ("exposure", "DOUBLE"), ("params", "VARCHAR"),
    ("trades_path", "VARCHAR"), ("equity_path", "VARCHAR"),
)
BACKTEST_COLUMNS = tuple(name for name, _ in BACKTEST_FIELDS)


#: walk-forward evaluations and sweeps (workbench/research): one row each, plus their folds and
#: trials, by table name: (column, SQL type) pairs; a row written to these tables is checked
#: against them (``ResearchQueries._upsert``)
RESEARCH_FIELDS = {
    "evaluations": (
        ("evaluation_id", "VARCHAR PRIMARY KEY"), ("sweep_id", "VARCHAR"), ("trial", "INTEGER"),
        ("symbol", "VARCHAR NOT NULL"), ("timeframe", "VARCHAR NOT NULL"),
        ("model_type", "VARCHAR"), ("folds", "INTEGER NOT NULL"), ("scheme", "VARCHAR NOT NULL"),
        ("purge", "INTEGER"), ("embargo", "INTEGER"),
        ("created_at", "TIMESTAMP NOT NULL DEFAULT current_timestamp"),
        ("oos_return", "DOUBLE"), ("oos_sharpe", "DOUBLE"), ("oos_max_drawdown", "DOUBLE"),
        ("oos_n_trades", "BIGINT"), ("verdict", "VARCHAR"), ("summary", "VARCHAR")),
    "folds": (
        ("evaluation_id", "VARCHAR NOT NULL"), ("fold", "INTEGER NOT NULL"),
        ("run_id", "VARCHAR"), ("backtest_id", "VARCHAR"), ("train_start_ts", "BIGINT"),
        ("train_end_ts", "BIGINT"), ("test_start_ts", "BIGINT"), ("test_end_ts", "BIGINT"),
        ("return_pct", "DOUBLE"), ("sharpe", "DOUBLE"), ("max_drawdown", "DOUBLE"),
        ("n_trades", "BIGINT"), ("buy_hold_return", "DOUBLE"), ("val_loss", "DOUBLE")),
    "sweeps": (
        ("sweep_id", "VARCHAR PRIMARY KEY"), ("objective", "VARCHAR"), ("direction", "VARCHAR"),
        ("created_at", "TIMESTAMP NOT NULL DEFAULT current_timestamp"),
        ("n_trials", "INTEGER"), ("best_trial", "INTEGER"), ("best_value", "DOUBLE"),
        ("deflated_sharpe", "DOUBLE"), ("pbo", "DOUBLE"), ("summary", "VARCHAR")),
    "sweep_trials": (
        ("sweep_id", "VARCHAR NOT NULL"), ("trial", "INTEGER NOT NULL"),
        ("state", "VARCHAR NOT NULL"), ("params", "VARCHAR"), ("value", "DOUBLE"),
        ("evaluation_id", "VARCHAR"), ("oos_return", "DOUBLE"), ("oos_sharpe", "DOUBLE"),
        ("oos_max_drawdown", "DOUBLE"), ("val_loss", "DOUBLE"), ("seconds", "DOUBLE"),
        ("error", "VARCHAR"), ("created_at", "TIMESTAMP NOT NULL DEFAULT current_timestamp")),
}
RESEARCH_COLUMNS = {table: tuple(name for name, _ in fields)
                    for table, fields in RESEARCH_FIELDS.items()}
#: the composite primary keys (single-column keys are in their column's type)
RESEARCH_KEYS = {"folds": ("evaluation_id", "fold"), "sweep_trials": ("sweep_id", "trial")}


#: paper trading (workbench/live/paper.py): one session's orders, fills, equity curve and open
#: position, by the short name the store's paper methods take: (column, SQL type) pairs
PAPER_FIELDS = {
    "orders": (("session_id", "VARCHAR NOT NULL"), ("order_id", "BIGINT NOT NULL"),
               ("symbol", "VARCHAR NOT NULL"), ("timeframe", "VARCHAR NOT NULL"),
               ("placed_ts", "BIGINT NOT NULL"), ("side", "VARCHAR NOT NULL"),
               ("direction", "INTEGER NOT NULL"), ("status", "VARCHAR NOT NULL"),
               ("fill_ts", "BIGINT")),
    "fills": (("session_id", "VARCHAR NOT NULL"), ("fill_id", "BIGINT NOT NULL"),
              ("order_id", "BIGINT NOT NULL"), ("ts", "BIGINT NOT NULL"),
              ("traded", "DOUBLE NOT NULL"), ("position", "DOUBLE NOT NULL"),
              ("price", "DOUBLE NOT NULL"), ("fee", "DOUBLE NOT NULL")),
    "equity": (("session_id", "VARCHAR NOT NULL"), ("ts", "BIGINT NOT NULL"),
               ("close", "DOUBLE NOT NULL"), ("cash", "DOUBLE NOT NULL"),
               ("position", "DOUBLE NOT NULL"), ("entry_price", "DOUBLE"),
               ("unrealised_pnl", "DOUBLE NOT NULL"), ("equity", "DOUBLE NOT NULL")),
    "positions": (("session_id", "VARCHAR PRIMARY KEY"), ("symbol", "VARCHAR NOT NULL"),
                  ("timeframe", "VARCHAR NOT NULL"), ("run_id", "VARCHAR"), ("ts", "BIGINT"),
                  ("position", "DOUBLE"), ("entry_price", "DOUBLE"), ("mark_price", "DOUBLE"),
                  ("unrealised_pnl", "DOUBLE"), ("cash", "DOUBLE"), ("equity", "DOUBLE"),
                  ("fills", "BIGINT"), ("fees", "DOUBLE")),
}
PAPER_COLUMNS = {kind: tuple(name for name, _ in fields) for kind, fields in PAPER_FIELDS.items()}
#: primary key (after session_id) and row order of each paper table
PAPER_KEYS = {"orders": "order_id", "fills": "fill_id", "equity": "ts", "positions": None}


def _paper_ddl(kind: str) -> str:
    key = PAPER_KEYS[kind]
    pk = f", PRIMARY KEY (session_id, {key})" if key else ""
    return f"CREATE TABLE IF NOT EXISTS paper_{kind} ({_columns_sql(PAPER_FIELDS[kind])}{pk})"


def _research_ddl(table: str) -> str:
    key = RESEARCH_KEYS.get(table)
    pk = f", PRIMARY KEY ({', '.join(key)})" if key else ""
    return f"CREATE TABLE IF NOT EXISTS {table} ({_columns_sql(RESEARCH_FIELDS[table])}{pk})"


def _columns_sql(fields) -> str:
    return ", ".join(f"{name} {sql_type}" for name, sql_type, *_ in fields)


def _sources_check_sql() -> str:
    names = ", ".join(f"'{s}'" for s in ANNOTATION_SOURCES)  # constants of workbench.actions
    return f"CHECK (source IN ({names}))"


SCHEMA = (
    """CREATE TABLE IF NOT EXISTS ohlcv (
        symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, ts BIGINT NOT NULL,
        open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,
        volume DOUBLE NOT NULL)""",
    # confirmed_ts is the close of the first candle at which the pivot is knowable, so a reader
    # at time t can ask for the pivots known by then; ts is the pivot candle's open time.
    """CREATE TABLE IF NOT EXISTS pivot_points (
        symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, ts BIGINT NOT NULL,
        confirmed_ts BIGINT NOT NULL, price DOUBLE NOT NULL, pivot_type VARCHAR NOT NULL,
        level INTEGER NOT NULL, strength INTEGER NOT NULL,
        PRIMARY KEY (symbol, timeframe, ts, pivot_type))""",
    "CREATE TABLE IF NOT EXISTS indicators (symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, "
    "ts BIGINT NOT NULL, " + ", ".join(f"{c} DOUBLE" for c in INDICATOR_TABLE_COLUMNS) + ")",
    f"""CREATE TABLE IF NOT EXISTS annotations (
        symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, ts BIGINT NOT NULL,
        action VARCHAR NOT NULL {action_check_sql("action")},
        source VARCHAR NOT NULL {_sources_check_sql()},
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (symbol, timeframe, ts, source))""",
    """CREATE TABLE IF NOT EXISTS ingest_cache (
        content_hash VARCHAR NOT NULL, symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL,
        path VARCHAR NOT NULL, rows BIGINT NOT NULL,
        ingested_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (content_hash, symbol, timeframe))""",
    f"CREATE TABLE IF NOT EXISTS prediction_ledger ({_columns_sql(LEDGER_FIELDS)}, "
    "recorded_at TIMESTAMP NOT NULL DEFAULT current_timestamp)",
    f"CREATE TABLE IF NOT EXISTS backtest_results ({_columns_sql(BACKTEST_FIELDS)})",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, kind VARCHAR, status VARCHAR,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp, summary VARCHAR)""",
    *(_paper_ddl(kind) for kind in PAPER_FIELDS),
    *(_research_ddl(table) for table in RESEARCH_FIELDS),
)
