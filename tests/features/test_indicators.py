"""Indicators against independent references (plain loops, pandas ewm) on a real ETH slice."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from workbench.errors import DataValidationError
from workbench.features.indicators import INDICATOR_COLUMNS, add_indicators, persist_indicators

RTOL = 1e-9


@pytest.fixture(scope="module")
def candles(eth_slice) -> pl.DataFrame:
    return eth_slice.head(1_000)


@pytest.fixture(scope="module")
def computed(candles) -> pl.DataFrame:
    return add_indicators(candles)


def _col(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _assert_close(got: np.ndarray, expected: np.ndarray) -> None:
    assert np.array_equal(np.isnan(got), np.isnan(expected)), "null positions differ"
    ok = ~np.isnan(expected)
    assert ok.sum() > 0
    np.testing.assert_allclose(got[ok], expected[ok], rtol=RTOL, atol=1e-9)


def _wilder_loop(values: list[float], period: int, first: int) -> list[float]:
    """Wilder's smoothing: mean of values[first-period+1 .. first], then (p-1)/p recursion."""
    out = [math.nan] * len(values)
    if len(values) <= first:
        return out
    avg = sum(values[first - period + 1: first + 1]) / period
    out[first] = avg
    for t in range(first + 1, len(values)):
        avg = (avg * (period - 1) + values[t]) / period
        out[t] = avg
    return out


def test_columns_match_the_store_table(computed, candles):
    assert computed.columns == [*candles.columns, *INDICATOR_COLUMNS]
    assert computed.height == candles.height


def test_returns_and_log_returns(computed, candles):
    close = candles["close"].to_numpy()
    ret = np.r_[np.nan, [close[t] / close[t - 1] - 1 for t in range(1, len(close))]]
    logret = np.r_[np.nan, [math.log(close[t] / close[t - 1]) for t in range(1, len(close))]]
    _assert_close(_col(computed, "returns"), ret)
    _assert_close(_col(computed, "log_returns"), logret)


@pytest.mark.parametrize("n", [10, 20, 50])
def test_sma_matches_loop(computed, candles, n):
    close = candles["close"].to_list()
    expected = [math.nan if t < n - 1 else sum(close[t - n + 1: t + 1]) / n
                for t in range(len(close))]
    _assert_close(_col(computed, f"sma_{n}"), np.array(expected))


@pytest.mark.parametrize("n", [10, 20, 50])
def test_ema_matches_pandas_ewm_adjust_false(computed, candles, n):
    expected = pd.Series(candles["close"].to_numpy()).ewm(span=n, adjust=False,
                                                          min_periods=n).mean()
    _assert_close(_col(computed, f"ema_{n}"), expected.to_numpy())


def test_rsi_matches_wilder_loop(computed, candles):
    close = candles["close"].to_list()
    gains = [0.0] + [max(close[t] - close[t - 1], 0.0) for t in range(1, len(close))]
    losses = [0.0] + [max(close[t - 1] - close[t], 0.0) for t in range(1, len(close))]
    g, lo = _wilder_loop(gains, 14, 14), _wilder_loop(losses, 14, 14)
    expected = [math.nan if math.isnan(a) else (50.0 if a + b == 0 else 100 - 100 / (1 + a / b)
                                                if b else 100.0) for a, b in zip(g, lo)]
    got = _col(computed, "rsi_14")
    _assert_close(got, np.array(expected))
    assert np.nanmin(got) >= 0 and np.nanmax(got) <= 100


def test_atr_matches_wilder_loop(computed, candles):
    h, lo, c = (candles[k].to_list() for k in ("high", "low", "close"))
    tr = [h[0] - lo[0]] + [max(h[t] - lo[t], abs(h[t] - c[t - 1]), abs(lo[t] - c[t - 1]))
                           for t in range(1, len(c))]
    _assert_close(_col(computed, "atr_14"), np.array(_wilder_loop(tr, 14, 13)))


def test_volume_z_matches_loop(computed, candles):
    v = candles["volume"].to_numpy()
    expected = np.full(len(v), np.nan)
    for t in range(19, len(v)):
        win = v[t - 19: t + 1]
        expected[t] = (v[t] - win.mean()) / win.std(ddof=1)
    _assert_close(_col(computed, "volume_z"), expected)


def test_indicators_are_causal(computed, candles):
    """Values at rows < k do not change when the rows from k on are altered or removed.

    polars' rolling sums are not bit-stable across series lengths (last-bit rounding), so this
    compares to 1e-9; a future row leaking in would move values by far more (prices x 1.5).
    """
    k = 600
    prefix = add_indicators(candles.head(k))
    altered = candles.with_columns(
        pl.when(pl.int_range(pl.len()) >= k).then(pl.col(c) * 1.5).otherwise(pl.col(c))
        for c in ("open", "high", "low", "close", "volume"))
    changed = add_indicators(altered).head(k)
    for name in INDICATOR_COLUMNS:
        _assert_close(_col(prefix, name), _col(computed.head(k), name))
        _assert_close(_col(changed, name), _col(computed.head(k), name))


def test_lazy_input_and_unsorted_rows(candles, computed):
    shuffled = candles.sample(fraction=1.0, shuffle=True, seed=3).lazy()
    assert add_indicators(shuffled).equals(computed)


def test_missing_column_is_a_typed_error(candles):
    with pytest.raises(DataValidationError, match="volume.*missing_column"):
        add_indicators(candles.drop("volume"))


def test_persist_indicators_roundtrip(eth_store, eth_slice):
    written = persist_indicators(eth_store, "ETH/USDT", "1m")
    assert written.columns == ["ts", *INDICATOR_COLUMNS]
    assert written.height == eth_slice.height
    stored = eth_store.read_indicators("ETH/USDT", "1m")
    assert stored.equals(written)
    # replacing again leaves one row per candle
    persist_indicators(eth_store, "ETH/USDT", "1m")
    assert eth_store.read_indicators("ETH/USDT", "1m").height == eth_slice.height
