"""Lookahead check: catches a signal that reads the next close, passes a causal one."""
from __future__ import annotations

import numpy as np
import polars as pl

from workbench.backtest.lookahead import lookahead_check, sample_times


def leaky_signal(frame: pl.DataFrame) -> np.ndarray:
    """BUY when the NEXT close is higher: uses data from after the decision."""
    c = frame["close"].to_numpy()
    out = np.zeros(c.shape[0])
    out[:-1] = np.sign(c[1:] - c[:-1])
    return out


def clean_signal(frame: pl.DataFrame) -> np.ndarray:
    """SMA(5) vs SMA(20) of closes up to each row only."""
    s = frame.select(pl.col("close").rolling_mean(5).alias("f"),
                     pl.col("close").rolling_mean(20).alias("s"))
    return np.sign((s["f"] - s["s"]).fill_null(0).to_numpy())


def test_leaky_signal_is_caught_with_its_timestamps(eth_slice):
    frame = eth_slice.slice(0, 400)
    times = sample_times(frame["ts"].to_numpy(), 8, min_row=30, seed=1)
    report = lookahead_check(leaky_signal, frame, times)
    assert not report.passed
    # truncating at t removes the next close: the signal of t itself changes
    flipped = [int(t) for t in times if leaky_signal(frame)[frame["ts"].to_list().index(t)] != 0]
    assert set(flipped) <= set(report.biased_ts)
    assert len(flipped) >= 6
    for d in report.differences:
        assert d.ts == d.sample_ts and d.truncated == 0.0 and d.full != 0.0
    assert report.to_dict()["n_differences"] == len(report.differences)


def test_clean_signal_passes(eth_slice):
    frame = eth_slice.slice(0, 400)
    times = sample_times(frame["ts"].to_numpy(), 8, min_row=30, seed=1)
    report = lookahead_check(clean_signal, frame, times)
    assert report.passed and report.differences == []
    assert report.rows_compared > 8 * 30


def test_sample_times_include_the_last_candle_and_are_distinct(eth_slice):
    ts = eth_slice["ts"].to_numpy()[:100]
    times = sample_times(ts, 10, min_row=50)
    assert times[-1] == ts[-1] and len(set(times.tolist())) == 10
    assert (times >= ts[50]).all()
