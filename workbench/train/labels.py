"""Action labels for training, kept in the store's ``annotations`` table.

Three sources, chosen by ``data.labels`` in the config:

``rule`` (seed 000)
    The label of candle t is BUY when the next close moves more than ``+threshold`` percent,
    SELL below ``-threshold`` percent, HOLD otherwise.
``pivot``
    A confirmed low pivot (``..L``) is BUY, a high pivot (``..H``) is SELL, every other candle HOLD.
    Labels inside the training range use only pivots confirmed by the close of the last training
    candle (the pivots detected on the candles up to it); later rows use the pivots known at the
    end of the loaded data. An outside bar that is both a high and a low pivot is left HOLD.
``manual``
    Whatever a person annotated; only annotated candles become training samples.

Derived labels (rule, pivot) are written back with :meth:`Store.add_annotations` so notebooks and
the backtest see the same labels the model was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from workbench.data.store import ACTIONS
from workbench.errors import ConfigError, NotFoundError

BUY, SELL, HOLD = (ACTIONS.index(a) for a in ("BUY", "SELL", "HOLD"))


@dataclass(frozen=True)
class LabelSet:
    """Per-row action classes of a candle series and which rows carry a real annotation."""

    actions: np.ndarray  # int64 (T,), class index into ACTIONS
    annotated: np.ndarray  # bool (T,)


def rule_actions(close: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """Return rule labels (T,): the last candle, with no next close, is HOLD."""
    close = np.asarray(close, dtype=np.float64)
    move = np.zeros_like(close)
    move[:-1] = (close[1:] / close[:-1] - 1.0) * 100.0
    out = np.full(close.shape[0], HOLD, dtype=np.int64)
    out[move > threshold] = BUY
    out[move < -threshold] = SELL
    return out


def pivot_actions(ts: np.ndarray, pivots: pl.DataFrame) -> np.ndarray:
    """Return pivot labels (T,) for candles ``ts`` from a pivots frame (ts, pivot_type)."""
    ts = np.asarray(ts, dtype=np.int64)
    out = np.full(ts.shape[0], HOLD, dtype=np.int64)
    if pivots.height == 0:
        return out
    kinds = pivots.select("ts", pl.col("pivot_type").str.slice(-1).alias("kind")).unique()
    lows = set(kinds.filter(pl.col("kind") == "L")["ts"].to_list())
    highs = set(kinds.filter(pl.col("kind") == "H")["ts"].to_list())
    for stamps, action in ((lows - highs, BUY), (highs - lows, SELL)):
        out[np.isin(ts, np.fromiter(stamps, dtype=np.int64, count=len(stamps)))] = action
    return out


def _detect(frame: pl.DataFrame, timeframe: str, strength: int) -> pl.DataFrame:
    from workbench.features.pivots import pivots_from_frame

    return pivots_from_frame(frame, timeframe, strength=strength)


def pivot_labels(frame: pl.DataFrame, timeframe: str, train_end: int, strength: int = 2):
    """Return pivot labels (T,) with training rows ``<= train_end`` free of later confirmations.

    Pivots detected on the candles up to row ``train_end`` are exactly those confirmed by that
    candle's close, so the training rows never see a pivot confirmed later.
    """
    ts = frame["ts"].to_numpy()
    known_at_train_end = pivot_actions(ts, _detect(frame.head(train_end + 1), timeframe, strength))
    known_at_end = pivot_actions(ts, _detect(frame, timeframe, strength))
    out = known_at_end.copy()
    out[: train_end + 1] = known_at_train_end[: train_end + 1]
    return out


def _to_rows(ts: np.ndarray, actions: np.ndarray, source: str, keep=None) -> pl.DataFrame:
    keep = np.ones(ts.shape[0], dtype=bool) if keep is None else keep
    return pl.DataFrame({"ts": ts[keep], "action": np.asarray(ACTIONS)[actions[keep]],
                         "source": [source] * int(keep.sum())})


def _manual(store, symbol, timeframe, ts: np.ndarray) -> LabelSet:
    ann = store.read_annotations(symbol, timeframe, int(ts[0]), int(ts[-1]), sources=["manual"])
    if ann.height == 0:
        raise NotFoundError(f"no manual annotations for {symbol} {timeframe} between ts "
                            f"{int(ts[0])} and {int(ts[-1])}; annotate candles or set "
                            "data.labels to 'rule' or 'pivot'")
    rows = np.searchsorted(ts, ann["ts"].to_numpy())
    actions = np.full(ts.shape[0], HOLD, dtype=np.int64)
    annotated = np.zeros(ts.shape[0], dtype=bool)
    actions[rows] = [ACTIONS.index(a) for a in ann["action"].to_list()]
    annotated[rows] = True
    return LabelSet(actions, annotated)


def build_labels(store, frame: pl.DataFrame, data_cfg, train_end: int, rows=None) -> LabelSet:
    """Derive (and store) or read the labels chosen by ``data_cfg.labels`` for ``frame``.

    Parameters
    ----------
    store : the Store the candles came from; derived labels are written to its annotations.
    frame : the loaded candles (ts, open, high, low, close, volume), sorted by ts.
    data_cfg : a :class:`~workbench.train.config.DataConfig`.
    train_end : the last row of the training range (pivot labels use pivots confirmed by it).
    rows : optional bool mask of the rows that become samples; only those are written back.

    Raises
    ------
    NotFoundError : for ``manual`` labels when no candle of the range is annotated.
    """
    ts = frame["ts"].to_numpy().astype(np.int64)
    kind = data_cfg.labels
    if kind == "manual":
        return _manual(store, data_cfg.symbol, data_cfg.timeframe, ts)
    if kind == "rule":
        actions = rule_actions(frame["close"].to_numpy(), data_cfg.rule_threshold)
    elif kind == "pivot":
        actions = pivot_labels(frame, data_cfg.timeframe, train_end, data_cfg.pivot_strength)
    else:
        raise ConfigError(f"config key 'data.labels': unknown label source {kind!r}")
    keep = None if rows is None else np.asarray(rows, dtype=bool)
    if kind == "pivot":
        keep = (actions != HOLD) if keep is None else keep & (actions != HOLD)
    store.add_annotations(data_cfg.symbol, data_cfg.timeframe, _to_rows(ts, actions, kind, keep))
    return LabelSet(actions, np.ones(ts.shape[0], dtype=bool))
