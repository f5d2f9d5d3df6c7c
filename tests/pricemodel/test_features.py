"""Features stage: MinMax scaling fitted on the training rows only."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.errors import ParameterError
from workbench.pricemodel.features import MinMaxScaler, build_features, split_rows


@pytest.fixture
def frame(eth_slice):
    return eth_slice.head(400)


def test_scaler_uses_training_rows_only(frame):
    fm = build_features(frame, 8)
    train = frame.head(fm.split.n_train)
    assert fm.scaler.mins[3] == train["close"].min() and fm.scaler.maxs[3] == train["close"].max()
    assert fm.values[: fm.split.n_train].min() == 0.0 and fm.values[: fm.split.n_train].max() == 1.0
    # changing rows after the training split must not move the scaler
    spiked = frame.with_columns(
        pl.when(pl.int_range(pl.len()) >= fm.split.n_train).then(pl.col("close") * 10)
        .otherwise(pl.col("close")).alias("close"))
    assert build_features(spiked, 8).scaler == fm.scaler


def test_scaled_values_match_the_formula_and_invert(frame):
    fm = build_features(frame, 8)
    col = fm.target_index
    lo, hi = fm.scaler.mins[col], fm.scaler.maxs[col]
    expected = (frame["close"].to_numpy() - lo) / (hi - lo)
    np.testing.assert_allclose(fm.values[:, col], expected, rtol=1e-6)
    np.testing.assert_allclose(fm.scaler.inverse(fm.values[:, col]), frame["close"].to_numpy(),
                               rtol=1e-6)
    assert fm.values.dtype == np.float32 and fm.columns[col] == "close"


def test_constant_column_does_not_divide_by_zero():
    frame = pl.DataFrame({"ts": [1, 2, 3], "close": [1.0, 2.0, 3.0], "flag": [5.0, 5.0, 5.0]})
    sc = MinMaxScaler.fit(frame, ("close", "flag"))
    assert np.isfinite(sc.transform(frame)).all() and (sc.transform(frame)[:, 1] == 0).all()


def test_state_dict_round_trip(frame):
    sc = build_features(frame, 8).scaler
    state = sc.state_dict()
    assert state["kind"] == "minmax" and state["columns"][3] == "close"
    assert MinMaxScaler.from_state_dict(state) == sc


def test_split_is_chronological_and_checked():
    s = split_rows(200, 8, 0.7, 0.15)
    assert (s.n_train, s.n_val, s.n_test) == (140, 30, 30)
    with pytest.raises(ParameterError, match="too few for sequence length 150"):
        split_rows(200, 150, 0.7, 0.15)
    with pytest.raises(ParameterError, match="train_frac"):
        split_rows(200, 8, 0.9, 0.2)
