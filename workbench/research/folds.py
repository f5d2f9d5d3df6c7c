"""Walk-forward folds: which candle rows train and which test, as a pure function.

Rows are the candles of the evaluated range, ``0 .. n_rows - 1``. The ``folds`` test windows of
``test_size`` rows each lie at the end of the range, oldest first, ``embargo`` rows apart. Fold
``i`` trains on rows ``[train_start, train_end)`` and tests on ``[test_start, test_end)``:

* ``rolling``: the training window has ``train_size`` rows and moves with the test window;
* ``expanding``: every fold starts training at the first fold's start, so later folds train on more.

Between the end of training and the start of testing, ``purge`` rows are left out. A training
sample ending at row ``t`` has a label that looks ``horizon`` rows ahead (``t + horizon``), and
the test window's first signal reads a window of ``window`` rows ending at ``test_start``, i.e.
rows from ``test_start - window + 1``. With ``purge >= window + horizon`` no training label
touches a row that the test window reads (:func:`min_purge`; tested as a property).
``embargo`` rows after each test window belong to no later test window (López de Prado's embargo:
returns right after a test window are serially correlated with it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from workbench.errors import ParameterError

SCHEMES = ("rolling", "expanding")


@dataclass(frozen=True)
class Fold:
    """Half-open row ranges of one fold."""

    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    def to_dict(self) -> dict:
        return asdict(self)


def min_purge(window: int, horizon: int) -> int:
    """Return the smallest purge that keeps every training label out of the test's inputs."""
    return window + horizon


def fold_ranges(n_rows: int, folds: int, *, test_size: int | None = None,
                train_size: int | None = None, scheme: str = "rolling", purge: int = 0,
                embargo: int = 0) -> list[Fold]:
    """Return the walk-forward folds of ``n_rows`` candles (see the module docstring).

    Parameters
    ----------
    test_size : rows per test window; default ``(n_rows - purge) // (folds + 1)``.
    train_size : rows per (first) training window; default all rows before the first purge.

    Raises
    ------
    ParameterError : naming the parameter when the folds do not fit in ``n_rows``.
    """
    if scheme not in SCHEMES:
        raise ParameterError(f"scheme {scheme!r} is not known; known schemes: {', '.join(SCHEMES)}")
    if folds < 1:
        raise ParameterError(f"folds {folds} must be >= 1")
    if purge < 0 or embargo < 0:
        raise ParameterError(f"purge {purge} and embargo {embargo} must be >= 0")
    test_size = test_size or (n_rows - purge - folds * embargo) // (folds + 1)
    if test_size < 1:
        raise ParameterError(f"{n_rows} rows are too few for {folds} folds with purge {purge} "
                             f"and embargo {embargo}: use fewer folds or a longer range")
    first_test = n_rows - folds * test_size - (folds - 1) * embargo
    room = first_test - purge
    train_size = train_size or room
    if train_size < 1 or train_size > room:
        raise ParameterError(
            f"train_size {train_size} does not fit: {n_rows} rows hold {folds} test windows of "
            f"{test_size} rows, embargo {embargo} and purge {purge}, leaving {room} for training")
    out = []
    for i in range(folds):
        test_start = first_test + i * (test_size + embargo)
        train_end = test_start - purge
        train_start = room - train_size if scheme == "expanding" else train_end - train_size
        out.append(Fold(i, train_start, train_end, test_start, test_start + test_size))
    return out
