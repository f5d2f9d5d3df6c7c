"""Resampling against a plain-Python reference on a real slice, incomplete buckets, persistence."""
from __future__ import annotations

import polars as pl
import pytest

from workbench.data.resample import RESAMPLE_TARGETS, resample_ohlcv, resample_series
from workbench.data.timeframes import timeframe_ms
from workbench.errors import NotFoundError, ParameterError


def reference(frame: pl.DataFrame, from_tf: str, to_tf: str) -> list[tuple]:
    """Bucket candle by candle in plain Python; drop an unfinished first/last bucket."""
    src, dst = timeframe_ms(from_tf), timeframe_ms(to_tf)
    buckets: dict[int, list] = {}
    for ts, o, h, lo, c, v in frame.iter_rows():
        start = ts - ts % dst
        b = buckets.setdefault(start, [start, o, h, lo, c, 0.0, ts, ts])
        b[2], b[3], b[4] = max(b[2], h), min(b[3], lo), c
        b[5] += v
        b[7] = ts
    out = list(buckets.values())
    if out and out[0][6] != out[0][0]:
        out = out[1:]
    if out and out[-1][7] != out[-1][0] + dst - src:
        out = out[:-1]
    return [tuple(b[:6]) for b in out]


@pytest.mark.parametrize("to_tf", RESAMPLE_TARGETS)
def test_matches_plain_python_reference_on_real_slice(eth_slice, to_tf):
    # start mid-bucket and end mid-bucket so both partial buckets are exercised
    frame = eth_slice.slice(7, 2_950)
    got = resample_ohlcv(frame, "1m", to_tf)
    want = reference(frame, "1m", to_tf)
    assert len(got) == len(want) > 0
    for g, w in zip(got.iter_rows(), want):
        assert g[:5] == w[:5]  # ts and prices are exact
        assert g[5] == pytest.approx(w[5], rel=1e-12)


def test_incomplete_last_bucket_is_dropped(eth_slice):
    first_hour = (-eth_slice["ts"][0]) % timeframe_ms("1h") // 60_000
    frame = eth_slice.slice(first_hour, 64)  # hh:00 .. (hh+1):03
    start = frame["ts"][0]
    assert start % timeframe_ms("1h") == 0
    out = resample_ohlcv(frame, "1m", "1h")
    assert out.height == 1 and out["ts"][0] == start
    assert out.row(0) == (start, frame["open"][0], frame["high"].head(60).max(),
                          frame["low"].head(60).min(), frame["close"][59], out["volume"][0])
    assert out["volume"][0] == pytest.approx(frame["volume"].head(60).sum())
    assert resample_ohlcv(frame.head(60), "1m", "1h").height == 1  # complete: kept
    assert resample_ohlcv(frame.head(59), "1m", "1h").height == 0  # last candle missing


def test_interior_gap_keeps_bucket_with_fewer_candles(eth_slice):
    frame = eth_slice.head(15).filter(pl.col("ts") != eth_slice["ts"][7])  # starts on a 5m mark
    out = resample_ohlcv(frame, "1m", "5m")
    assert out.height == 3
    assert out["volume"][1] == pytest.approx(frame.slice(5, 4)["volume"].sum())


def test_hourly_fx_with_weekend_gaps_to_4h(tmp_store):
    from workbench.paths import DATA_DIR

    fx = pl.read_parquet(DATA_DIR / "eurusd_1h.parquet")
    out = resample_ohlcv(fx, "1h", "4h")
    assert out.rows() == reference(fx, "1h", "4h")


def test_resample_series_persists_its_own_series(eth_store, eth_slice):
    out = resample_series(eth_store, "ETH/USDT", "1m", "15m")
    stored = eth_store.read_ohlcv("ETH/USDT", "15m")
    assert stored.equals(out) and out.height == len(reference(eth_slice, "1m", "15m"))
    assert eth_store.read_ohlcv("ETH/USDT", "1m").equals(eth_slice)  # source untouched
    again = resample_series(eth_store, "ETH/USDT", "1m", "15m", persist=False)
    assert again.equals(out)


@pytest.mark.parametrize("from_tf,to_tf", [("1m", "2h"), ("5m", "5m"), ("1h", "15m"), ("1M", "1d")])
def test_bad_pairs_are_parameter_errors(eth_slice, from_tf, to_tf):
    with pytest.raises(ParameterError):
        resample_ohlcv(eth_slice, from_tf, to_tf)


def test_missing_series_is_not_found(tmp_store):
    with pytest.raises(NotFoundError, match="ingest it first"):
        resample_series(tmp_store, "NOPE", "1m", "5m")
