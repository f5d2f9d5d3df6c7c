"""Model windows: exact plain-loop reference, own-rows normalisation, zero-copy views."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.errors import ParameterError
from workbench.features.windows import (
    FEATURES,
    N_FEATURES,
    SeriesArrays,
    candle_features,
    gather_windows,
    next_candle_relative,
    window_view,
)

EPS = 1e-8


@pytest.fixture(scope="module")
def series(eth_slice) -> SeriesArrays:
    return SeriesArrays.from_frame("ETH/USDT", "1m", eth_slice)


def _loop_features(frame: pl.DataFrame) -> np.ndarray:
    """The feature table of the module docstring, one candle at a time."""
    rows = []
    prev = None
    for o, h, lo, c, v in frame.select("open", "high", "low", "close", "volume").iter_rows():
        prev = c if prev is None else prev
        rows.append([o, h, lo, c, v, np.log(c / prev) * 100.0, (h - lo) / c * 100.0,
                     (c - o) / c * 100.0])
        prev = c
    return np.array(rows, dtype=np.float64).astype(np.float32)


def _loop_window(features: np.ndarray, end: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """One window built and normalised by hand: rows end-n+1..end, its own close/volume stats."""
    raw = np.array([features[r] for r in range(end - n + 1, end + 1)], dtype=np.float32)
    close = raw[:, 3].astype(np.float64)
    volume = raw[:, 4].astype(np.float64)
    params = np.array([close.mean(), close.std() + EPS, volume.mean(), volume.std() + EPS],
                      dtype=np.float32)
    out = raw.copy()
    for r in range(n):
        for f in range(4):
            out[r, f] = (raw[r, f] - params[0]) / params[1]
        out[r, 4] = (raw[r, 4] - params[2]) / params[3]
    return out, params


def test_features_match_loop(series, eth_slice):
    assert series.features.dtype == np.float32
    assert series.features.shape == (eth_slice.height, N_FEATURES) and len(FEATURES) == 8
    assert np.array_equal(series.features, _loop_features(eth_slice))


@pytest.mark.parametrize("n", [1, 32, 600])
def test_gather_equals_plain_loop_exactly(series, n):
    rng = np.random.default_rng(n)
    # unsorted, with a repeat and both edges: order and values must follow end_idx exactly
    ends = np.r_[rng.integers(n - 1, series.length, 61), n - 1, series.length - 1, n - 1]
    windows, params = gather_windows(series.features, ends, n)
    assert windows.dtype == np.float32 and params.dtype == np.float32
    assert windows.shape == (ends.size, n, N_FEATURES) and params.shape == (ends.size, 4)
    for b, end in enumerate(ends):
        ref_w, ref_p = _loop_window(series.features, int(end), n)
        assert np.array_equal(windows[b], ref_w), f"window {b} (end row {end}) differs"
        assert np.array_equal(params[b], ref_p)
    # the method on the snapshot is the same gather
    w2, p2 = series.windows(ends, n)
    assert np.array_equal(w2, windows) and np.array_equal(p2, params)


def test_norm_params_recompute_and_invert(series):
    n, ends = 120, np.array([119, 700, 2999])
    windows, params = series.windows(ends, n)
    for b, end in enumerate(ends):
        raw = series.features[end - n + 1: end + 1].astype(np.float64)
        expected = np.array([raw[:, 3].mean(), raw[:, 3].std() + EPS, raw[:, 4].mean(),
                             raw[:, 4].std() + EPS], dtype=np.float32)
        assert np.array_equal(params[b], expected)
        # de-normalising with the returned params gives the raw window back
        back = windows[b].astype(np.float64)
        back[:, :4] = back[:, :4] * params[b, 1] + params[b, 0]
        back[:, 4] = back[:, 4] * params[b, 3] + params[b, 2]
        np.testing.assert_allclose(back, raw, rtol=1e-5)
        # the derived columns are left unscaled
        assert np.array_equal(windows[b][:, 5:], series.features[end - n + 1: end + 1, 5:])


def test_window_uses_only_its_own_rows(eth_slice, series):
    n, end = 200, 1_500
    before_w, before_p = series.windows([end], n)
    perturbed = eth_slice.with_columns(
        pl.when(pl.int_range(pl.len()).is_in([end + 1, end + 50, end - n - 1]))
        .then(pl.col(c) * 3.0).otherwise(pl.col(c))
        for c in ("open", "high", "low", "close", "volume"))
    other = SeriesArrays.from_frame("ETH/USDT", "1m", perturbed)
    after_w, after_p = other.windows([end], n)
    assert np.array_equal(after_w, before_w) and np.array_equal(after_p, before_p)
    # the perturbation is visible to the windows that contain it
    assert not np.array_equal(other.windows([end + 1], n)[0], series.windows([end + 1], n)[0])


def test_append_matches_from_frame(eth_slice, series):
    head = 2_000
    grown = SeriesArrays.from_frame("ETH/USDT", "1m", eth_slice.head(head))
    for row in eth_slice.slice(head).iter_rows():
        grown.append(*row)
    assert grown.length == series.length
    assert np.array_equal(grown.ts, series.ts)
    assert np.array_equal(grown.ohlcv, series.ohlcv)
    assert np.array_equal(grown.features, series.features)
    ends = np.array([head - 1, head, series.length - 1])
    assert np.array_equal(grown.windows(ends, 600)[0], series.windows(ends, 600)[0])
    assert grown.index_of(int(eth_slice["ts"][-1])) == series.length - 1


def test_append_from_empty_matches_from_frame(eth_slice):
    frame = eth_slice.head(40)
    grown = SeriesArrays.from_frame("ETH/USDT", "1m", frame.head(0))
    for row in frame.iter_rows():
        grown.append(*row)
    assert np.array_equal(grown.features, SeriesArrays.from_frame("E", "1m", frame).features)


def test_window_view_is_zero_copy(series):
    feats = series.features.copy()
    view = window_view(feats, 600)
    assert view.shape == (feats.shape[0] - 599, 600, N_FEATURES)
    assert np.shares_memory(view, feats)
    assert view.nbytes > feats.nbytes * 100  # a materialised copy would be this big
    feats[700, 3] = -1.0
    assert view[700 - 599, 599, 3] == -1.0 and view[101, 599, 3] == -1.0
    assert np.array_equal(view[5], feats[5:605])


def test_gather_does_not_touch_the_snapshot(series):
    before = series.features.copy()
    windows, _ = series.windows([700], 600)
    windows[:] = 0.0
    assert np.array_equal(series.features, before)


def test_next_candle_relative_matches_loop(eth_slice, series):
    ends = np.array([0, 10, 2_998])
    got = next_candle_relative(*(series.column(k) for k in ("open", "high", "low", "close")), ends)
    o, h, lo, c = (eth_slice[k].to_list() for k in ("open", "high", "low", "close"))
    expected = np.array([[(x[e + 1] / c[e] - 1) * 100 for x in (o, h, lo, c)] for e in ends],
                        dtype=np.float32)
    assert np.array_equal(got, expected)


def test_bad_window_requests_raise(series):
    with pytest.raises(ParameterError, match=r"\[599, 2999\] for n=600"):
        gather_windows(series.features, [598], 600)
    with pytest.raises(ParameterError, match="window end rows"):
        gather_windows(series.features, [3_000], 600)
    with pytest.raises(ParameterError, match="window length 0"):
        window_view(series.features, 0)
    with pytest.raises(ParameterError, match="no candle at ts 5"):
        series.index_of(5)


def test_candle_features_first_log_return_is_zero():
    out = candle_features([1.0, 2.0], [1.5, 2.5], [0.5, 1.5], [1.0, 2.0], [10.0, 20.0])
    assert out[0, 5] == 0.0 and out[1, 5] == np.float32(np.log(2.0) * 100)
