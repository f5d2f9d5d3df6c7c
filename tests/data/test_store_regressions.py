"""Regressions found in review: each test is named after what broke."""
from __future__ import annotations

import polars as pl
import pytest

from workbench.data.candle_files import ts_to_epoch_ms
from workbench.data.ingest import ingest_file
from workbench.data.resample import resample_ohlcv
from workbench.data.store import Store
from workbench.errors import DataValidationError, ParameterError


def test_reingest_after_replacing_a_series_reads_the_file_again(tmp_store, eth_slice, tmp_path):
    path = tmp_path / "eth.parquet"
    eth_slice.head(100).write_parquet(path)
    assert ingest_file(tmp_store, path, "ETH/USDT", "1m").status == "ingested"
    tmp_store.replace_series("ETH/USDT", "1m", eth_slice.slice(200, 10))  # e.g. a resample
    again = ingest_file(tmp_store, path, "ETH/USDT", "1m")
    assert again.status == "ingested" and again.rows_added == 100
    assert tmp_store.read_ohlcv("ETH/USDT", "1m").height == 110


def test_append_refuses_a_candle_not_after_the_last_stored_one(eth_store, eth_slice):
    before = eth_store.read_ohlcv("ETH/USDT", "1m")
    with pytest.raises(DataValidationError, match="append_after_last"):
        eth_store.append_candles("ETH/USDT", "1m", eth_slice.tail(1))
    assert eth_store.read_ohlcv("ETH/USDT", "1m").equals(before)


def test_bad_annotation_names_the_value_instead_of_an_aborted_transaction(eth_store, eth_slice):
    rows = pl.DataFrame({"ts": [eth_slice["ts"][5]], "action": ["buy"], "source": ["manual"]})
    with pytest.raises(ParameterError, match="action 'buy' is not one of"):
        eth_store.add_annotations("ETH/USDT", "1m", rows)
    assert eth_store.read_annotations("ETH/USDT", "1m").height == 0


def test_failed_insert_surfaces_its_own_error_not_the_unregister_error(eth_store, eth_slice):
    row = eth_slice.tail(1).with_columns(ts=pl.col("ts") + 60_000, open=pl.lit(None, pl.Float64))
    with pytest.raises(Exception) as info:
        eth_store.append_candles("ETH/USDT", "1m", row)
    assert "NOT NULL" in str(info.value) and "aborted" not in str(info.value)


def test_unknown_indicator_or_backtest_field_is_refused_before_any_sql(eth_store):
    with pytest.raises(ParameterError, match="indicators table"):
        eth_store.replace_indicators("ETH/USDT", "1m", pl.DataFrame({"ts": [1], "x; DROP": [1.0]}))
    with pytest.raises(ParameterError, match="backtest_results columns"):
        eth_store.save_backtest({"backtest_id": "b", "symbol": "S", "timeframe": "1m",
                                 "evil) --": 1})


@pytest.mark.parametrize("text, ok", [("2025-05-20 00:00:00 UTC", True),
                                      ("2025-05-20T00:00:00+02:00", True),
                                      ("2025-05-20", False), ("2025-05-20T00:00:00", False)])
def test_a_date_alone_is_zoneless_and_a_trailing_utc_is_a_zone(text, ok):
    if ok:
        assert ts_to_epoch_ms(pl.Series([text]), "f.csv", 2)[0] > 0
    else:
        with pytest.raises(DataValidationError, match="no time zone"):
            ts_to_epoch_ms(pl.Series([text]), "f.csv", 2)


def test_resample_refuses_candles_off_the_source_grid(eth_slice):
    hourly = resample_ohlcv(eth_slice, "1m", "1h")
    shifted = hourly.with_columns(ts=pl.col("ts") + 30 * 60_000)
    with pytest.raises(ParameterError, match="not on the 1h grid"):
        resample_ohlcv(shifted, "1h", "4h")


def test_a_store_recreated_at_the_same_path_gets_its_tables_again(tmp_path, eth_slice):
    path = tmp_path / "again.duckdb"
    Store(path).replace_series("ETH/USDT", "1m", eth_slice.head(5))
    path.unlink()
    store = Store(path)
    assert store.series().height == 0
    store.replace_series("ETH/USDT", "1m", eth_slice.head(5))
    assert store.read_ohlcv("ETH/USDT", "1m").height == 5


def test_a_store_file_another_process_is_still_creating_is_waited_for(tmp_path, eth_slice):
    # DuckDB creates the file before writing its header: a second process opening it in that
    # instant saw "not a valid DuckDB database file" (two readers starting on a new store)
    import threading
    import time

    path = tmp_path / "new.duckdb"
    path.touch()  # created, header not written yet

    def finish_creating():
        time.sleep(0.3)
        path.unlink()  # the creator's connect then writes a real header, as Store does
        Store(path).replace_series("ETH/USDT", "1m", eth_slice.head(3))

    threading.Thread(target=finish_creating).start()
    assert Store(path, busy_timeout=10).read_ohlcv("ETH/USDT", "1m").height in (0, 3)


def test_an_old_damaged_store_file_is_reported_not_retried(tmp_path):
    import os

    from workbench.errors import StoreError

    path = tmp_path / "old.duckdb"
    path.write_bytes(b"not a database")
    os.utime(path, (1, 1))
    with pytest.raises(StoreError, match="not a valid DuckDB database file"):
        Store(path, busy_timeout=10).series()


def test_research_rows_are_checked_against_the_schemas_columns(tmp_store):
    with pytest.raises(ParameterError, match=r"field\(s\) \['vale'\] are not sweep_trials"):
        tmp_store.save_sweep_trials([{"sweep_id": "sw-1", "trial": 0, "state": "COMPLETE",
                                      "vale": 1.0}])
    tmp_store.save_sweep({"sweep_id": "sw-1", "n_trials": 1},
                         [{"sweep_id": "sw-1", "trial": 0, "state": "COMPLETE", "value": 1.5,
                           "params": {"model.d_model": 8}}])
    assert tmp_store.sweep_trials("sw-1")["params"].to_list() == ['{"model.d_model": 8}']
    assert tmp_store.sweeps()["n_trials"].to_list() == [1]
    # every column list of the schema is the table DuckDB made
    from workbench.data.store.schema import RESEARCH_COLUMNS
    for table, columns in RESEARCH_COLUMNS.items():
        made = tmp_store.query("SELECT column_name FROM information_schema.columns WHERE "
                               "table_name = ? ORDER BY ordinal_position", [table])
        assert tuple(made["column_name"]) == columns
