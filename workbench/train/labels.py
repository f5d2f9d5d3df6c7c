"""Action labels for training, kept in the store's ``annotations`` table.

Three sources; ``data.labels`` in the config chooses one or a list of them:

``manual``
    Whatever a person annotated (source ``manual`` in the store).
``pivot``
    A confirmed low pivot (``..L``) is BUY, a high pivot (``..H``) is SELL. Labels inside the
    training range use only pivots confirmed by the close of the last training candle (the pivots
    detected on the candles up to it); later rows use the pivots known at the end of the loaded
    data. An outside bar that is both a high and a low pivot gets no pivot label.
``rule`` (the next-candle move)
    The label of candle t is BUY when the next close moves more than ``+threshold`` percent,
    SELL below ``-threshold`` percent, HOLD otherwise. It labels every candle.

Precedence, where several chosen sources label one candle: **manual beats pivot beats rule**
(:data:`~workbench.train.config.LABEL_SOURCES` order, whatever the order of the list). A manual
label is a person's deliberate call on that candle, often made precisely to correct what a
derived label says, so nothing derived may overrule it. A pivot label says the candle is a
confirmed turning point over ``2 * strength + 1`` candles, which is what the BUY/SELL signal is
meant to catch; the rule only looks at one next-candle move, which at a 0.05 % threshold is
mostly noise, so it is the dense fallback for the candles no better source labels.

Candles no chosen source labels: when ``pivot`` is chosen without ``rule``, they are HOLD ("not a
turning point", the pivot source's meaning as before lists existed, so ``labels: pivot`` trains
as it always did); otherwise (``manual`` alone, or nothing else labels the candle) they are not
samples, and the data module drops their windows.

Derived labels (rule, pivot) are written back with :meth:`Store.add_annotations` (rule for every
sample row, pivot for its pivot candles) so notebooks and the backtest see the labels the model
was trained on. The run itself uses the labels it derived, not the table's derived rows: the
table keeps rows of earlier runs (another range, another threshold), and an earlier run over a
longer range may have stored pivots confirmed after this run's training range ends.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from workbench.actions import ACTIONS, BUY, HOLD, HOLD_BAND, SELL, realised_actions
from workbench.errors import ConfigError, NotFoundError
from workbench.train.config import LABEL_SOURCES, label_sources



@dataclass(frozen=True)
class LabelSet:
    """Per-row action classes of a candle series and which rows carry a real annotation."""

    actions: np.ndarray  # int64 (T,), class index into ACTIONS
    annotated: np.ndarray  # bool (T,): some chosen source labels the row
    # int8 (T,): index into LABEL_SOURCES of the source of the row's label, BETWEEN_PIVOTS for
    # the HOLD between pivots, -1 for none
    source: np.ndarray | None = None

    def counts(self, rows=None) -> dict[str, int]:
        """Return how many of ``rows`` (default: all) each source labels."""
        src = self.source if rows is None else self.source[rows]
        names = (*LABEL_SOURCES, "hold_between_pivots")
        return {name: int((src == code).sum()) for code, name in enumerate(names)}


def rule_actions(close: np.ndarray, threshold: float = HOLD_BAND) -> np.ndarray:
    """Return rule labels (T,): the realised action of each next close; the last candle, with no
    next close, is HOLD."""
    close = np.asarray(close, dtype=np.float64)
    move = np.zeros_like(close)
    move[:-1] = (close[1:] / close[:-1] - 1.0) * 100.0
    return realised_actions(move, threshold)


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


def _to_rows(ts: np.ndarray, actions: np.ndarray, source: str, keep: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"ts": ts[keep], "action": np.asarray(ACTIONS)[actions[keep]],
                         "source": [source] * int(keep.sum())})


def _manual(store, frame: pl.DataFrame, data_cfg, train_end: int):
    """Return (actions, labelled) of the candles a person annotated."""
    ts = frame["ts"].to_numpy().astype(np.int64)
    ann = store.read_annotations(data_cfg.symbol, data_cfg.timeframe, int(ts[0]), int(ts[-1]),
                                 sources=["manual"])
    rows = np.searchsorted(ts, ann["ts"].to_numpy())
    on_candle = ts[np.minimum(rows, ts.shape[0] - 1)] == ann["ts"].to_numpy()
    actions = np.full(ts.shape[0], HOLD, dtype=np.int64)
    labelled = np.zeros(ts.shape[0], dtype=bool)
    codes = np.array([ACTIONS.index(a) for a in ann["action"].to_list()], dtype=np.int64)
    actions[rows[on_candle]] = codes[on_candle]
    labelled[rows[on_candle]] = True
    return actions, labelled


def _pivot(store, frame: pl.DataFrame, data_cfg, train_end: int):
    """Return (actions, labelled): BUY/SELL on the pivot candles only."""
    actions = pivot_labels(frame, data_cfg.timeframe, train_end, data_cfg.pivot_strength)
    return actions, actions != HOLD


def _rule(store, frame: pl.DataFrame, data_cfg, train_end: int):
    """Return (actions, labelled): every candle."""
    actions = rule_actions(frame["close"].to_numpy(), data_cfg.rule_threshold)
    return actions, np.ones(actions.shape[0], dtype=bool)


#: source -> fn(store, frame, data_cfg, train_end) -> (actions int64 (T,), labelled bool (T,))
SOURCES = {"manual": _manual, "pivot": _pivot, "rule": _rule}
#: sources derived from the candles, written back to the store's annotations
DERIVED = ("pivot", "rule")
#: the ``LabelSet.source`` code of the HOLD given to the candles between pivots (see above)
BETWEEN_PIVOTS = len(LABEL_SOURCES)


def build_labels(store, frame: pl.DataFrame, data_cfg, train_end: int, rows=None) -> LabelSet:
    """Derive (and store) or read the labels of ``data_cfg.labels`` and merge them by precedence.

    Parameters
    ----------
    store : the Store the candles came from; derived labels are written to its annotations.
    frame : the loaded candles (ts, open, high, low, close, volume), sorted by ts.
    data_cfg : a :class:`~workbench.train.config.DataConfig`.
    train_end : the last row of the training range (pivot labels use pivots confirmed by it).
    rows : optional bool mask of the rows that become samples; only those are written back.

    Returns
    -------
    LabelSet : per row the action of the highest-precedence source that labels it, whether any
        does (``annotated``) and which (``source``; see the module docstring).

    Raises
    ------
    NotFoundError : when ``manual`` is the only source and no candle of the range is annotated.
    ConfigError : for an unknown source.
    """
    chosen = label_sources(data_cfg.labels)
    unknown = set([data_cfg.labels] if isinstance(data_cfg.labels, str) else data_cfg.labels)
    unknown -= set(SOURCES)
    if unknown or not chosen:
        raise ConfigError(f"config key 'data.labels': unknown label source(s) "
                          f"{sorted(unknown) or data_cfg.labels!r}; known: {list(SOURCES)}")
    ts = frame["ts"].to_numpy().astype(np.int64)
    keep = np.ones(ts.shape[0], dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    actions = np.full(ts.shape[0], HOLD, dtype=np.int64)
    source = np.full(ts.shape[0], -1, dtype=np.int8)
    for name in chosen:  # highest precedence first: a row keeps the first label it gets
        got, labelled = SOURCES[name](store, frame, data_cfg, train_end)
        if name in DERIVED:
            store.add_annotations(data_cfg.symbol, data_cfg.timeframe,
                                  _to_rows(ts, got, name, keep & labelled))
        new = labelled & (source < 0)
        actions[new], source[new] = got[new], LABEL_SOURCES.index(name)
    if "pivot" in chosen and "rule" not in chosen:
        source[source < 0] = BETWEEN_PIVOTS  # actions there are already HOLD
    if chosen == ("manual",) and not (source >= 0).any():
        raise NotFoundError(f"no manual annotations for {data_cfg.symbol} {data_cfg.timeframe} "
                            f"between ts {int(ts[0])} and {int(ts[-1])}; annotate candles or add "
                            "'pivot' / 'rule' to data.labels (e.g. [manual, pivot, rule])")
    return LabelSet(actions, source >= 0, source)
