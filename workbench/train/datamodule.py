"""The LightningDataModule: windows of stored candles, split by time, never materialised.

:class:`WindowDataModule` reads one series from the store once into a
:class:`~workbench.features.windows.SeriesArrays` snapshot. A sample is the *row* at which a
window ends; a batch gathers its B windows with :func:`~workbench.features.windows.gather_windows`
(sliding views, each window normalised with its own rows), so no tensor of all windows ever
exists. Targets are the action label of the end row and the next candle relative to its close
(:func:`~workbench.features.windows.next_candle_relative`).

Splits are chronological: the oldest ``1 - val - test`` of the end rows train, then validation,
then test. The last end row of a split is dropped when its target candle is the first end row of
the next split, so no split's target leaks into a later split's input. Only the order *within* the
training split is shuffled, with a permutation that depends on (seed, epoch) alone, which makes a
resumed run see exactly the batches an uninterrupted one would.
"""
from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from workbench.actions import ACTIONS
from workbench.errors import DataValidationError, NotFoundError
from workbench.features.windows import SeriesArrays, gather_windows, next_candle_relative
from workbench.train.labels import LabelSet, build_labels


@dataclass(frozen=True)
class Splits:
    """End rows of the train, validation and test samples (int64 arrays, ascending)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def chronological_splits(ends: np.ndarray, val_fraction: float, test_fraction: float) -> Splits:
    """Split ascending end rows into train/val/test blocks by time (see module docstring)."""
    n = ends.shape[0]
    n_test = max(1, int(round(n * test_fraction)))
    n_val = max(1, int(round(n * val_fraction)))
    train, val, test = np.split(ends, [n - n_val - n_test, n - n_test])
    train = train[train + 1 < val[0]]
    val = val[val + 1 < test[0]]
    return Splits(train, val, test)


class WindowDataset(Dataset):
    """Samples = end rows; ``__getitems__`` gathers a whole batch of windows at once."""

    def __init__(self, arrays: SeriesArrays, ends: np.ndarray, labels: LabelSet, window: int):
        self.arrays, self.ends, self.labels, self.window = arrays, ends, labels, window

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    def __getitem__(self, i: int):
        return self.__getitems__([i])

    def __getitems__(self, indices) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = self.ends[np.asarray(indices, dtype=np.int64)]
        x, _ = gather_windows(self.arrays.features, rows, self.window)
        ohlcv = self.arrays.ohlcv
        candle = next_candle_relative(ohlcv[:, 0], ohlcv[:, 1], ohlcv[:, 2], ohlcv[:, 3], rows)
        action = self.labels.actions[rows]
        return torch.from_numpy(x), torch.from_numpy(action), torch.from_numpy(candle)


def _batch_as_is(batch):
    return batch


class EpochShuffleSampler(Sampler[int]):
    """A permutation of ``range(n)`` fixed by (seed, epoch); identity order when not shuffling.

    Lightning calls :meth:`set_epoch` at the start of every epoch.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        rng = np.random.default_rng([self.seed, self.epoch])
        return iter(rng.permutation(self.n).tolist())


def _require_nonempty(splits, c) -> None:
    """Raise NotFoundError naming the first empty split of ``splits``."""
    for name in ("train", "val", "test"):
        if getattr(splits, name).shape[0] == 0:
            raise NotFoundError(f"the {name} split of {c.symbol} {c.timeframe} is empty; "
                                "use more data or other split fractions")


def _require_two_actions(actions: np.ndarray, c) -> None:
    """Raise DataValidationError when every training window carries the same action.

    A classifier trained on one class learns to answer it always; its run would "complete" with
    a perfect training accuracy and nothing learned.
    """
    values, counts = np.unique(actions, return_counts=True)
    if values.size < 2:
        raise DataValidationError(
            f"all {int(counts.sum())} training windows of {c.symbol} {c.timeframe} are labelled "
            f"{ACTIONS[int(values[0])]} (labels: {c.labels}); a model cannot learn to tell "
            "actions apart from one class. Widen the range (data.start, data.end, "
            "data.max_windows) or choose other label sources (data.labels)",
            rule="the training labels need at least two actions")


class WindowDataModule(L.LightningDataModule):
    """Serve train/val/test windows of one stored series.

    Parameters
    ----------
    data_cfg : :class:`~workbench.train.config.DataConfig` (series, labels, split, max windows).
    window : N, candles per window.
    batch_size, seed : loader batch size and the shuffle seed.
    store : a Store; default ``Store(data_cfg.db)``.
    """

    def __init__(self, data_cfg, window: int, batch_size: int, seed: int = 0, store=None):
        super().__init__()
        self.cfg, self.window, self.batch_size, self.seed = data_cfg, window, batch_size, seed
        self._store = store
        self.arrays: SeriesArrays | None = None
        self.splits: Splits | None = None
        self.labels: LabelSet | None = None

    @property
    def store(self):
        if self._store is None:
            from workbench.data.store import Store

            self._store = Store(self.cfg.db)
        return self._store

    def _load(self):
        c = self.cfg
        frame = self.store.read_ohlcv(c.symbol, c.timeframe, c.start, c.end)
        if frame.height < self.window + 10:
            raise NotFoundError(
                f"series {c.symbol} {c.timeframe} in {self.store.path} has {frame.height} candles "
                f"in the chosen range; a window of {self.window} needs at least "
                f"{self.window + 10} (ingest data or lower model.window)")
        return frame

    def setup(self, stage: str | None = None) -> None:
        """Load the series once, derive labels and split the end rows by time."""
        if self.arrays is not None:
            return
        c = self.cfg
        frame = self._load()
        arrays = SeriesArrays.from_frame(c.symbol, c.timeframe, frame)
        ends = np.arange(self.window - 1, arrays.length - 1, c.stride, dtype=np.int64)
        if c.max_windows:
            ends = ends[-c.max_windows:]
        splits = chronological_splits(ends, c.val_fraction, c.test_fraction)
        _require_nonempty(splits, c)
        rows = np.zeros(arrays.length, dtype=bool)
        rows[ends] = True
        labels = build_labels(self.store, frame, c, int(splits.train[-1]) + 1, rows)
        keep = labels.annotated  # windows whose end candle no chosen source labels are dropped
        self.splits = Splits(*(s[keep[s]] for s in (splits.train, splits.val, splits.test)))
        _require_nonempty(self.splits, c)  # again: unlabelled windows were dropped
        _require_two_actions(labels.actions[self.splits.train], c)
        self.arrays, self.labels = arrays, labels

    def _loader(self, ends: np.ndarray, sampler=None) -> DataLoader:
        ds = WindowDataset(self.arrays, ends, self.labels, self.window)
        return DataLoader(ds, batch_size=self.batch_size, sampler=sampler,
                          collate_fn=_batch_as_is, num_workers=0)

    def train_dataloader(self) -> DataLoader:
        n = self.splits.train.shape[0]
        return self._loader(self.splits.train, EpochShuffleSampler(n, self.seed, self.cfg.shuffle))

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.splits.val)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.splits.test)

    def describe(self) -> dict:
        """Return sizes and time ranges of the splits and the samples' label sources (run.json)."""
        ts = self.arrays.ts
        parts = (("train", self.splits.train), ("val", self.splits.val), ("test", self.splits.test))
        out = {name: {"windows": int(part.shape[0]), "first_ts": int(ts[part[0]]),
                      "last_ts": int(ts[part[-1]])} for name, part in parts}
        out["labels"] = self.labels.counts(np.concatenate([part for _, part in parts]))
        return out
