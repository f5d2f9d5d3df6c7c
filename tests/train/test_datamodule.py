"""The data module: windows gathered per batch, chronological splits, shuffling only in train."""
from __future__ import annotations

import numpy as np
import torch

from workbench.features.windows import SeriesArrays, gather_windows, next_candle_relative
from workbench.train.datamodule import EpochShuffleSampler, WindowDataModule, chronological_splits


def test_splits_are_chronological_and_purged():
    s = chronological_splits(np.arange(15, 115), 0.15, 0.15)
    assert s.train.max() + 1 < s.val.min() and s.val.max() + 1 < s.test.min()
    assert (np.diff(s.train) > 0).all() and (s.test == np.arange(100, 115)).all()


def test_batches_are_the_gathered_windows_and_next_candles(tiny, eth_store, eth_slice):
    dm = WindowDataModule(tiny.data, 16, 32, seed=1, store=eth_store)
    dm.setup()
    assert dm.splits.train.shape[0] + dm.splits.val.shape[0] + dm.splits.test.shape[0] <= 300
    x, action, candle = next(iter(dm.val_dataloader()))
    rows = dm.splits.val[:32]
    arrays = SeriesArrays.from_frame("ETH/USDT", "1m", eth_slice)
    want_x, _ = gather_windows(arrays.features, rows, 16)
    o, h, l, c = (eth_slice[k].to_numpy() for k in ("open", "high", "low", "close"))
    torch.testing.assert_close(x, torch.from_numpy(want_x))
    torch.testing.assert_close(candle, torch.from_numpy(next_candle_relative(o, h, l, c, rows)))
    assert action.dtype == torch.int64 and x.shape == (32, 16, 8)
    # no lookahead: the last input row of a window is its end row, the target is the next candle
    assert rows.max() + 1 < len(eth_slice)


def test_train_order_depends_on_seed_and_epoch_only():
    a, b = EpochShuffleSampler(50, seed=3), EpochShuffleSampler(50, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) and sorted(a) == list(range(50))
    b.set_epoch(3)
    assert list(a) != list(b)
    assert list(EpochShuffleSampler(5, 3, shuffle=False)) == [0, 1, 2, 3, 4]


def test_val_and_test_loaders_are_in_time_order(tiny, eth_store):
    dm = WindowDataModule(tiny.data, 16, 8, store=eth_store)
    dm.setup()
    seen = [x for x, _, _ in dm.test_dataloader()]
    assert sum(len(x) for x in seen) == dm.splits.test.shape[0]
    assert dm.describe()["train"]["last_ts"] < dm.describe()["val"]["first_ts"]


def test_training_on_one_action_is_refused_naming_the_series_and_the_fix(tmp_store, eth_slice,
                                                                          tmp_path):
    """A halted market (every candle at one price): rule labels are all HOLD. Training would
    "complete" with a model that always answers HOLD; it is refused before it starts."""
    import json

    import polars as pl
    from typer.testing import CliRunner

    from tests.train.conftest import tiny_dict
    from workbench.cli import app
    from workbench.runs import list_runs

    price = float(eth_slice["close"][0])
    flat = eth_slice.with_columns(*(pl.lit(price).alias(c) for c in ("open", "high", "low",
                                                                     "close")))
    tmp_store.replace_series("ETH/USDT", "1m", flat)
    cfg = tmp_path / "flat.yaml"
    cfg.write_text(json.dumps(tiny_dict(tmp_store.path, data={"labels": "rule"})))
    out = CliRunner().invoke(app, ["--db", str(tmp_store.path), "train", "--config", str(cfg)])
    assert out.exit_code != 0
    assert "training windows of ETH/USDT 1m are labelled HOLD (labels: rule)" in out.output
    assert "choose other label sources (data.labels)" in out.output
    assert "the training labels need at least two actions" in out.output
    assert "Traceback" not in out.output
    assert [r["status"] for r in list_runs(tmp_store.path)] in ([], ["failed"])
