"""Labels: the seed-000 rule, pivot labels without lookahead, manual labels, stored annotations."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from workbench.errors import NotFoundError
from workbench.features.pivots import pivots_from_frame
from workbench.train.config import DataConfig
from workbench.train.labels import BUY, HOLD, SELL, build_labels, pivot_labels, rule_actions


def test_rule_labels_follow_the_next_close_threshold():
    close = np.array([100.0, 100.06, 100.06, 99.99, 100.0, 100.0])
    # moves: +0.06% BUY, 0 HOLD, -0.07% SELL, +0.01% HOLD, 0 HOLD, last candle HOLD
    assert rule_actions(close, 0.05).tolist() == [BUY, HOLD, SELL, HOLD, HOLD, HOLD]


def test_pivot_labels_in_the_train_range_use_only_pivots_confirmed_by_its_end(eth_slice):
    frame = eth_slice.head(600)
    pivots = pivots_from_frame(frame, "1m", strength=2)
    ts = frame["ts"].to_numpy()
    # end the train range one candle after a pivot: it is confirmed only a candle later
    train_end = int(np.searchsorted(ts, pivots.filter(pl.col("ts") > ts[400])["ts"][0])) + 1
    labels = pivot_labels(frame, "1m", train_end, strength=2)
    end_close = ts[train_end] + 60_000
    first_known = pivots.group_by("ts").agg(pl.col("confirmed_ts").min())
    late = first_known.filter((pl.col("confirmed_ts") > end_close) & (pl.col("ts") <= ts[train_end]))
    assert late.height > 0  # pivots near the end are confirmed only after it...
    late_rows = np.searchsorted(ts, late["ts"].to_numpy())
    assert (labels[late_rows] == HOLD).all()  # ...so they are not labels of the train range
    known = pivots.filter(pl.col("confirmed_ts") <= end_close)
    lows = known.filter(pl.col("pivot_type").str.ends_with("L"))["ts"].to_numpy()
    highs = known.filter(pl.col("pivot_type").str.ends_with("H"))["ts"].to_numpy()
    only_low = np.setdiff1d(lows, highs)
    assert only_low.size and (labels[np.searchsorted(ts, only_low)] == BUY).all()
    assert (labels[np.searchsorted(ts, np.setdiff1d(highs, lows))] == SELL).all()
    # after the train range, pivots known at the end of the data are used
    full = pivot_labels(frame, "1m", len(frame) - 1, strength=2)
    assert (labels[train_end + 1:] == full[train_end + 1:]).all()


def test_derived_labels_are_written_to_the_store_annotations(eth_store, eth_slice):
    frame = eth_slice.head(200)
    cfg = DataConfig(labels="rule")
    rows = np.zeros(200, dtype=bool)
    rows[50:150] = True
    labels = build_labels(eth_store, frame, cfg, 120, rows)
    stored = eth_store.read_annotations("ETH/USDT", "1m", sources=["rule"])
    assert stored.height == 100
    assert stored["ts"].to_list() == frame["ts"].to_list()[50:150]
    expected = np.array(["BUY", "SELL", "HOLD"])[labels.actions[50:150]]
    assert stored["action"].to_list() == expected.tolist()


def test_manual_labels_keep_only_annotated_candles(eth_store, eth_slice):
    frame = eth_slice.head(100)
    cfg = DataConfig(labels="manual")
    with pytest.raises(NotFoundError, match="no manual annotations"):
        build_labels(eth_store, frame, cfg, 80)
    ts = frame["ts"].to_list()
    eth_store.add_annotations("ETH/USDT", "1m", pl.DataFrame(
        {"ts": [ts[10], ts[20]], "action": ["SELL", "BUY"], "source": ["manual", "manual"]}))
    labels = build_labels(eth_store, frame, cfg, 80)
    assert np.flatnonzero(labels.annotated).tolist() == [10, 20]
    assert labels.actions[[10, 20]].tolist() == [SELL, BUY]


def _annotate(store, rows: dict[int, str], ts) -> None:
    store.add_annotations("ETH/USDT", "1m", pl.DataFrame(
        {"ts": [int(ts[r]) for r in rows], "action": list(rows.values()),
         "source": ["manual"] * len(rows)}))


def test_manual_beats_pivot_beats_rule_where_sources_overlap(eth_store, eth_slice):
    frame = eth_slice.head(400)
    ts = frame["ts"].to_numpy()
    train_end = 300
    rule = rule_actions(frame["close"].to_numpy(), 0.05)
    pivot = pivot_labels(frame, "1m", train_end, strength=2)
    # a rule-labelled candle that is no pivot, given the opposite action by hand
    plain = next(r for r in range(50, 300) if pivot[r] == HOLD and rule[r] == BUY)
    # a pivot candle whose next-candle move the rule reads differently
    disputed = next(r for r in range(50, 300) if pivot[r] != HOLD and rule[r] != pivot[r]
                    and r != plain)
    # a pivot candle overridden by hand
    overruled = next(r for r in range(50, 300) if pivot[r] == BUY and r not in (plain, disputed))
    _annotate(eth_store, {plain: "SELL", overruled: "HOLD"}, ts)

    # the list's order does not matter: the precedence is fixed
    labels = build_labels(eth_store, frame, DataConfig(labels=["rule", "pivot", "manual"]),
                          train_end)
    assert labels.annotated.all()  # rule labels every candle
    assert labels.actions[plain] == SELL and rule[plain] == BUY  # manual over rule
    assert labels.actions[disputed] == pivot[disputed]  # pivot over rule
    assert labels.actions[overruled] == HOLD  # manual over pivot
    assert [labels.source[r] for r in (plain, disputed, overruled)] == [0, 1, 0]
    others = np.ones(400, dtype=bool)
    others[[plain, overruled]] = False
    expected = np.where(pivot != HOLD, pivot, rule)
    assert (labels.actions[others] == expected[others]).all()
    assert labels.counts() == {"manual": 2, "pivot": int((pivot != HOLD).sum()) - 1,
                               "rule": 400 - int((pivot != HOLD).sum()) - 1,
                               "hold_between_pivots": 0}
    # the derived sources were written back, the manual rows left as they were
    stored = eth_store.read_annotations("ETH/USDT", "1m")
    by_source = {s: stored.filter(pl.col("source") == s).height for s in ("manual", "pivot", "rule")}
    assert by_source == {"manual": 2, "pivot": int((pivot != HOLD).sum()), "rule": 400}


def test_candles_no_chosen_source_labels_are_not_samples(eth_store, eth_slice):
    frame = eth_slice.head(300)
    ts = frame["ts"].to_numpy()
    pivot = pivot_labels(frame, "1m", 250, strength=2)
    plain = next(r for r in range(20, 250) if pivot[r] == HOLD)
    _annotate(eth_store, {plain: "BUY"}, ts)
    labels = build_labels(eth_store, frame, DataConfig(labels=["manual", "pivot"]), 250)
    # pivot without rule: the candles between pivots are HOLD, as with labels: pivot alone
    assert labels.annotated.all() and labels.actions[plain] == BUY
    alone = build_labels(eth_store, frame, DataConfig(labels="pivot"), 250)
    between = (pivot == HOLD)
    between[plain] = False
    assert (alone.actions == pivot).all()
    assert (labels.actions[between] == HOLD).all()
    assert labels.counts()["hold_between_pivots"] == int(between.sum())
    # manual alone: only the annotated candle is a sample
    manual = build_labels(eth_store, frame, DataConfig(labels=["manual"]), 250)
    assert np.flatnonzero(manual.annotated).tolist() == [plain]


def test_train_model_on_manual_pivot_and_rule_completes_with_its_artifacts(eth_store, eth_slice):
    from workbench.live.batch import start_batch_training
    from workbench.train.config import config_from_dict
    from workbench.train.handle import ModelHandle
    from workbench.train.runs import run_path

    from .conftest import tiny_dict

    ts = eth_slice["ts"].to_numpy()
    # two hand labels among the last 300 candles (the windows max_windows keeps)
    _annotate(eth_store, {2800: "SELL", 2900: "BUY"}, ts)
    handle = ModelHandle.from_config(config_from_dict(tiny_dict(eth_store.path)))
    run = start_batch_training(handle, eth_store, "ETH/USDT", "1m", overrides={
        "training.num_epochs": 1, "data.max_windows": 300})
    record = run.wait(300)
    assert record["status"] == "completed" and record["global_step"] > 0
    frozen = json.loads((run_path(run.run_id) / "config.json").read_text())
    assert frozen["data"]["labels"] == ["manual", "pivot", "rule"]
    used = record["data"]["labels"]
    assert used["manual"] == 2 and used["pivot"] > 0 and used["rule"] > 0
    assert sum(record["data"][s]["windows"] for s in ("train", "val", "test")) == sum(
        used.values())
    folder = run_path(run.run_id)
    for name in ("run.json", "config.json", "metrics.json", "checkpoints/best.ckpt",
                 "checkpoints/last.ckpt", "logs/training.log"):
        assert (folder / name).is_file(), name
    assert handle.version == record["global_step"]
    stored = eth_store.read_annotations("ETH/USDT", "1m", sources=["pivot"])
    assert stored.height > 0 and set(stored["action"].to_list()) <= {"BUY", "SELL"}
