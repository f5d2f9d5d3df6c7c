"""Dataset stage: vectorised windows equal seed 002's loop; the tf.data stream is seeded."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.errors import ParameterError
from workbench.pricemodel.datasets import (create_sequences_reference, make_tf_dataset,
                                           make_windows, split_windows)
from workbench.pricemodel.features import build_features


@pytest.mark.parametrize("length", [1, 8, 120])
def test_windows_equal_the_plain_loop_in_order_and_values(eth_slice, length):
    fm = build_features(eth_slice.head(600), length)
    x, y = make_windows(fm.values, length, fm.target_index)
    rx, ry = create_sequences_reference(fm.values, length, fm.target_index)
    assert x.shape == rx.shape == (600 - length, length, 5) and y.shape == ry.shape
    assert x.dtype == rx.dtype == np.float32
    np.testing.assert_array_equal(x, rx)
    np.testing.assert_array_equal(y, ry)


def test_window_targets_are_the_next_close(eth_slice):
    fm = build_features(eth_slice.head(100), 4)
    x, y = make_windows(fm.values, 4, fm.target_index)
    np.testing.assert_array_equal(x[10], fm.values[10:14])
    assert y[10, 0] == fm.values[14, fm.target_index]


def test_too_short_series_is_refused():
    with pytest.raises(ParameterError, match="needs more than 5 rows"):
        make_windows(np.zeros((5, 3), np.float32), 5, 0)


def test_split_by_target_row(eth_slice):
    fm = build_features(eth_slice.head(300), 8)
    x, y = make_windows(fm.values, 8, fm.target_index)
    w = split_windows(x, y, 8, fm.split)
    assert len(w.train) + len(w.val) + len(w.test) == len(x)
    assert w.train.target_rows.max() == fm.split.n_train - 1
    assert w.val.target_rows.min() == fm.split.n_train
    assert w.test.target_rows.min() == fm.split.n_train + fm.split.n_val
    np.testing.assert_array_equal(w.test.y[:, 0], fm.values[w.test.target_rows, fm.target_index])


def _epoch(ds):
    xs, ys = zip(*[(bx.numpy(), by.numpy()) for bx, by in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_tf_dataset_is_seeded_complete_and_batched(eth_slice):
    fm = build_features(eth_slice.head(300), 8)
    x, y = make_windows(fm.values, 8, fm.target_index)
    part = split_windows(x, y, 8, fm.split).train
    a = make_tf_dataset(part, 16, shuffle=True, seed=3)
    b = make_tf_dataset(part, 16, shuffle=True, seed=3)
    ax, ay = _epoch(a)
    bx, by = _epoch(b)
    np.testing.assert_array_equal(ax, bx)  # same seed, same order
    assert not np.array_equal(ay, part.y)  # shuffled
    assert sorted(ay[:, 0].tolist()) == sorted(part.y[:, 0].tolist())  # each sample once
    assert [int(bx.shape[0]) for bx, _ in a][0] == 16


def test_tf_dataset_without_shuffle_keeps_order(eth_slice):
    fm = build_features(eth_slice.head(300), 8)
    x, y = make_windows(fm.values, 8, fm.target_index)
    part = split_windows(x, y, 8, fm.split).val
    vx, vy = _epoch(make_tf_dataset(part, 7, shuffle=False, seed=0))
    np.testing.assert_array_equal(vx, part.x)
    np.testing.assert_array_equal(vy, part.y)
