"""Signal sources: signal-file validation (typed errors naming file/row/rule) and alignment."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.backtest.signals import (actions_to_signals, align_signals, read_signal_file)
from workbench.errors import DataValidationError, NotFoundError

TS = [60_000 * i for i in range(5)]


def _write(tmp_path, frame: pl.DataFrame, name="sig.parquet"):
    path = tmp_path / name
    frame.write_parquet(path)
    return path


def test_valid_file_reads_as_int64_ts_and_int8_signal(tmp_path):
    path = _write(tmp_path, pl.DataFrame({"ts": TS, "signal": [0, 1, 0, -1, 0]}))
    out = read_signal_file(path)
    assert out.schema == {"ts": pl.Int64, "signal": pl.Int8}
    assert out["signal"].to_list() == [0, 1, 0, -1, 0]


def test_datetime_ts_is_converted_to_epoch_ms(tmp_path):
    frame = pl.DataFrame({"ts": pl.Series(TS).cast(pl.Datetime("ms", "UTC")),
                          "signal": [0, 1, 0, -1, 0]})
    assert read_signal_file(_write(tmp_path, frame))["ts"].to_list() == TS


@pytest.mark.parametrize("frame, rule, row", [
    (pl.DataFrame({"ts": TS, "sig": [0] * 5}), "required_columns", None),
    (pl.DataFrame({"ts": [str(t) for t in TS], "signal": [0] * 5}), "ts_type", None),
    (pl.DataFrame({"ts": [0, None, 2], "signal": [0, 0, 0]}), "ts_not_null", 1),
    (pl.DataFrame({"ts": TS, "signal": [0, 1, None, 0, 0]}), "signal_not_null", 2),
    (pl.DataFrame({"ts": TS, "signal": [0, 1, 0, 2, 0]}), "signal_in_{-1,0,1}", 3),
    (pl.DataFrame({"ts": TS, "signal": [0.0, 0.5, 0.0, 0.0, 0.0]}), "signal_in_{-1,0,1}", 1),
    (pl.DataFrame({"ts": TS, "signal": ["BUY"] * 5}), "signal_type", None),
    (pl.DataFrame({"ts": [0, 60_000, 60_000], "signal": [0, 0, 0]}), "ts_strictly_increasing",
     2),
])
def test_bad_files_raise_errors_naming_file_row_and_rule(tmp_path, frame, rule, row):
    path = _write(tmp_path, frame)
    with pytest.raises(DataValidationError) as info:
        read_signal_file(path)
    err = info.value
    assert err.rule == rule and err.row == row and err.path == path
    assert str(path) in str(err) and rule in str(err)


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "not.parquet"
    bad.write_text("ts,signal\n0,1\n")
    with pytest.raises(DataValidationError, match="readable_parquet"):
        read_signal_file(bad)
    with pytest.raises(NotFoundError, match="missing.parquet"):
        read_signal_file(tmp_path / "missing.parquet")


def test_align_puts_signals_on_candles_and_holds_elsewhere():
    candles = np.array(TS, dtype=np.int64)
    sig = pl.DataFrame({"ts": [-60_000, 60_000, 180_000, 600_000], "signal": [1, 1, -1, 1]})
    assert align_signals(sig, candles).tolist() == [0, 1, 0, -1, 0]


def test_align_rejects_off_candle_ts_and_disjoint_ranges():
    candles = np.array(TS, dtype=np.int64)
    with pytest.raises(DataValidationError) as info:
        align_signals(pl.DataFrame({"ts": [0, 90_000], "signal": [1, 1]}), candles, "f.parquet")
    assert info.value.rule == "ts_on_candle" and info.value.row == 1 and info.value.ts == 90_000
    with pytest.raises(DataValidationError, match="overlaps_range"):
        align_signals(pl.DataFrame({"ts": [10**9], "signal": [1]}), candles)


def test_actions_map_buy_sell_hold_and_threshold():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.2, 0.2, 0.6], [0.4, 0.35, 0.25]])
    assert actions_to_signals(probs).tolist() == [1, -1, 0, 1]
    assert actions_to_signals(probs, threshold=0.45).tolist() == [1, -1, 0, 0]


def test_sma_cross_signals_are_causal_crossings():
    from workbench.backtest.signals import sma_cross_signals

    close = np.array([5, 4, 3, 2, 1, 2, 3, 4, 5, 4, 3, 2, 1], dtype=float)
    sig = sma_cross_signals(close, 2, 4)
    f = np.convolve(close, np.ones(2) / 2, "valid")[2:]  # both aligned: index 0 is row 3
    s = np.convolve(close, np.ones(4) / 4, "valid")
    above = f > s
    expect = np.zeros(close.shape[0], dtype=np.int8)
    for t in range(4, close.shape[0]):
        if above[t - 3] and not above[t - 4]:
            expect[t] = 1
        elif not above[t - 3] and above[t - 4]:
            expect[t] = -1
    assert sig.tolist() == expect.tolist()
    assert (sig != 0).sum() == 2
    truncated = sma_cross_signals(close[:9], 2, 4)
    assert truncated.tolist() == sig[:9].tolist()
