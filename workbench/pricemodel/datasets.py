"""Dataset stage: vectorised windows and the ``tf.data`` input stream.

Window ``i`` is rows ``i .. i+L-1`` of the scaled feature matrix and its target is the scaled close
of row ``i+L`` (the next candle), exactly as the original ``create_sequences`` loop built them;
:func:`create_sequences_reference` keeps that loop as the executable specification the tests and
the benchmark compare against. :func:`make_windows` builds all windows at once with
``sliding_window_view`` (one copy, no Python loop over samples).

Windows are split by the row of their *target*: a window belongs to the split its target row is
in, so training targets are training rows only, and later windows may look back across the
boundary (past data, no lookahead).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from workbench.errors import ParameterError
from workbench.pricemodel.features import SplitRows


@dataclass(frozen=True)
class WindowSplit:
    """Windows ``x`` float32 (N, L, F), targets ``y`` float32 (N, 1) and target rows (N,)."""

    x: np.ndarray
    y: np.ndarray
    target_rows: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class Windows:
    """The three window splits of one feature matrix."""

    train: WindowSplit
    val: WindowSplit
    test: WindowSplit


def create_sequences_reference(values: np.ndarray, sequence_length: int,
                               target_index: int) -> tuple[np.ndarray, np.ndarray]:
    """The original plain-loop window builder (reference only; slow on purpose).

    Returns
    -------
    (x float32 (N, L, F), y float32 (N, 1)) with ``N = len(values) - L``.
    """
    xs, ys = [], []
    for i in range(len(values) - sequence_length):
        xs.append(values[i:i + sequence_length])
        ys.append(values[i + sequence_length, target_index])
    return (np.asarray(xs, dtype=np.float32),
            np.asarray(ys, dtype=np.float32).reshape(-1, 1))


def make_windows(values: np.ndarray, sequence_length: int,
                 target_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the same ``(x, y)`` as :func:`create_sequences_reference`, vectorised.

    Raises
    ------
    ParameterError : when the series is not longer than the window.
    """
    n = values.shape[0] - sequence_length
    if sequence_length < 1 or n < 1:
        raise ParameterError(f"sequence length {sequence_length} needs more than "
                             f"{sequence_length} rows; got {values.shape[0]}")
    # view shape (N, F, L) over rows 0..T-2 → (N, L, F), materialised once as float32
    view = sliding_window_view(values[:-1], sequence_length, axis=0)
    x = np.ascontiguousarray(view.transpose(0, 2, 1), dtype=np.float32)
    y = np.ascontiguousarray(values[sequence_length:, target_index:target_index + 1],
                             dtype=np.float32)
    return x, y


def split_windows(x: np.ndarray, y: np.ndarray, sequence_length: int, split: SplitRows) -> Windows:
    """Split windows by the row of their target into train / validation / test."""
    rows = np.arange(x.shape[0]) + sequence_length
    a = split.n_train - sequence_length
    b = a + split.n_val

    def part(lo: int, hi: int | None) -> WindowSplit:
        return WindowSplit(x[lo:hi], y[lo:hi], rows[lo:hi])

    return Windows(part(0, a), part(a, b), part(b, None))


def make_tf_dataset(part: WindowSplit, batch_size: int, *, shuffle: bool, seed: int,
                    buffer_size: int | None = None):
    """Return ``from_tensor_slices → cache → [shuffle(seed)] → batch → prefetch(AUTOTUNE)``.

    The shuffle buffer defaults to the whole split (an exact uniform shuffle; the split is small),
    reshuffled every epoch from the fixed ``seed``.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((part.x, part.y)).cache()
    if shuffle:
        ds = ds.shuffle(buffer_size or max(len(part), 1), seed=seed,
                        reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
