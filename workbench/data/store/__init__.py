"""The DuckDB store: the schema and every SQL statement of the workbench.

All SQL lives in this package and always uses bound parameters. Other modules call the methods of
:class:`Store`; none of them opens a DuckDB connection itself.

* :mod:`.connection` opens short, retrying connections so several processes share one file
  (its docstring explains the multi-process design);
* :mod:`.schema` defines every table and each column list once;
* :mod:`.ohlcv`, :mod:`.features`, :mod:`.annotations`, :mod:`.backtests`, :mod:`.ledger`,
  :mod:`.paper` and :mod:`.research` hold the queries of their tables, as methods that
  :class:`Store` combines.
"""
from __future__ import annotations

from workbench.data.store.annotations import AnnotationQueries
from workbench.data.store.backtests import BacktestQueries
from workbench.data.store.connection import StoreConnection
from workbench.data.store.features import FeatureQueries
from workbench.data.store.ledger import LedgerQueries
from workbench.data.store.ohlcv import OhlcvQueries
from workbench.data.store.paper import PaperQueries
from workbench.data.store.research import ResearchQueries
from workbench.data.store.schema import (BACKTEST_COLUMNS, LEDGER_COLUMNS, LEDGER_SCHEMA,
                                         OHLCV_COLUMNS, PAPER_COLUMNS)

__all__ = ["Store", "OHLCV_COLUMNS", "BACKTEST_COLUMNS", "LEDGER_COLUMNS", "LEDGER_SCHEMA",
           "PAPER_COLUMNS"]


class Store(OhlcvQueries, FeatureQueries, AnnotationQueries, BacktestQueries, LedgerQueries,
            PaperQueries, ResearchQueries, StoreConnection):
    """Access to one DuckDB database file.

    Parameters
    ----------
    path : database file; resolved with :func:`workbench.paths.resolve_db_path` when ``None``.
    busy_timeout : seconds to keep retrying when another process holds the file lock.
    """

