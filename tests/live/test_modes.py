"""Each training mode's triggers: when a session trains, on which frame, with which action."""
from __future__ import annotations

import ast
from pathlib import Path

import polars as pl
import pytest

from workbench.actions import ACTIONS
from workbench.errors import ParameterError
from workbench.features.pivots import detect_pivots
from workbench.live.modes import TrainingMode
from workbench.live.session import LiveSession, SessionConfig
from workbench.live.strategy import StrategyConfig, TrainingStrategyManager, move_action

from ._live_helpers import bit_identical, tiny_handle, weights

SYMBOL, TF, MINUTE = "ETH/USDT", "1m", 60_000


def _session(store, mode, first=100, last=260, **cfg):
    ts = store.read_ohlcv(SYMBOL, TF)["ts"].to_numpy()
    handle = tiny_handle()
    return handle, LiveSession(handle, store, SYMBOL, TF, mode, int(ts[first]), int(ts[last]),
                               config=SessionConfig(**cfg))


def _pivots(session, strength: int) -> pl.DataFrame:
    s = session.series
    frame = detect_pivots(s.ts, s.ohlcv[:, 1], s.ohlcv[:, 2], timeframe=TF, strength=strength,
                          levels=3)
    return frame.filter(pl.col("level") == 1)


def _steps(session):
    return [(r.now_ts, r.frame_end_ts, r.actions) for r in session.training_log]


# -- the enum ------------------------------------------------------------------------------------
def test_mode_enum_parses_values_and_names_known_modes_on_error():
    assert [m.value for m in TrainingMode] == ["none", "pivots_only", "every_candle", "manual"]
    assert TrainingMode.parse("every-candle") is TrainingMode.EVERY_CANDLE
    assert TrainingMode.parse(TrainingMode.MANUAL) is TrainingMode.MANUAL
    assert TrainingMode.NONE == "none" and not TrainingMode.NONE.trains
    with pytest.raises(ParameterError, match="'sometimes'.*none, pivots_only, every_candle"):
        TrainingMode.parse("sometimes")


def test_no_mode_string_literal_outside_modes_module():
    """Mode values appear as code string literals only in workbench/live/modes.py."""
    root = Path(__file__).resolve().parents[2] / "workbench"
    specific = {"pivots_only", "every_candle"}
    everywhere_in_live = specific | {"none", "manual"}
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "modes.py" and path.parent.name == "live":
            continue
        live = path.name in ("session.py", "strategy.py", "batch.py", "stress.py", "live.py")
        banned = everywhere_in_live if live else specific
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in banned:
                offenders.append(f"{path.relative_to(root)}:{node.lineno} {node.value!r}")
    assert offenders == []


# -- none ----------------------------------------------------------------------------------------
def test_none_leaves_weights_bit_identical(eth_store):
    handle, session = _session(eth_store, TrainingMode.NONE)
    before = weights(handle)
    stats = session.run()
    assert stats["predictions"] == 161 and stats["training_steps"] == 0
    assert bit_identical(before, weights(handle))
    assert handle.version == 0 and handle.lock.stats()["acquisitions"] == 0
    assert stats["errors"] == 0 and stats["state"] == "finished"


# -- pivots_only ---------------------------------------------------------------------------------
def test_pivots_only_trains_exactly_at_confirmed_pivots_on_the_pivot_frame(eth_store):
    handle, session = _session(eth_store, TrainingMode.PIVOTS_ONLY)
    stats = session.run()
    ts = session.series.ts
    first_ts, last_close = int(ts[session.feed.start_index]), int(ts[-1]) + MINUTE
    pivots = _pivots(session, 2).filter((pl.col("ts") >= first_ts)
                                        & (pl.col("confirmed_ts") <= last_close))
    expected = sorted((int(c), (int(t),), ("SELL" if k.endswith("H") else "BUY",))
                      for t, c, k in pivots.select("ts", "confirmed_ts", "pivot_type").rows())
    assert len(expected) >= 20
    assert sorted(_steps(session)) == expected
    assert all(r.now_ts > r.frame_end_ts[0] + MINUTE for r in session.training_log)
    assert stats["pivot"] == stats["training_steps"] == len(expected) == handle.version
    assert stats["per_candle"] == stats["manual_step"] == 0 and stats["errors"] == 0


# -- every_candle ----------------------------------------------------------------------------------
def _expected_every_candle(session, strength):
    s = session.series
    ts, close = s.ts, s.ohlcv[:, 3]
    pivots = _pivots(session, strength)
    out = []
    for c in range(session.feed.start_index + 1, session.feed.end_index):
        now = int(ts[c]) + MINUTE  # the close that reveals the frame ending at c - 1
        known = pivots.filter((pl.col("ts") == int(ts[c - 1])) & (pl.col("confirmed_ts") <= now))
        kinds = {k[-1] for k in known["pivot_type"].to_list()}
        move = ACTIONS[move_action((close[c] / close[c - 1] - 1.0) * 100.0)]
        label = {frozenset("H"): "SELL", frozenset("L"): "BUY"}.get(frozenset(kinds), move)
        out.append((now, (int(ts[c - 1]),), (label,)))
    return out


def test_every_candle_trains_once_per_candle_with_move_labels_and_no_lookahead(eth_store):
    handle, session = _session(eth_store, TrainingMode.EVERY_CANDLE, last=200)
    stats = session.run()
    expected = _expected_every_candle(session, 2)
    assert _steps(session) == expected and len(expected) == 100
    assert stats["per_candle"] == stats["training_steps"] == 100 == handle.version
    assert {a for *_, (a,) in expected} == {"BUY", "SELL", "HOLD"}
    # candles that later turn out to be pivots whose pivot label differs from the move: a
    # session that looked ahead would have used the pivot label
    later = _pivots(session, 2)
    leaky = [e for e in expected if e[1][0] in set(later["ts"].to_list())
             and e[2][0] != ("SELL" if later.filter(pl.col("ts") == e[1][0])["pivot_type"][0]
                             .endswith("H") else "BUY")]
    assert len(leaky) >= 5
    assert stats["errors"] == 0


def test_every_candle_uses_a_pivot_label_when_it_is_confirmed_in_time(eth_store):
    handle, session = _session(eth_store, TrainingMode.EVERY_CANDLE, last=180, pivot_strength=1)
    session.run()
    expected = _expected_every_candle(session, 1)
    assert _steps(session) == expected
    ts_of = {int(t): k for t, k in _pivots(session, 1).select("ts", "pivot_type").rows()}
    from_pivots = [e for e in expected if e[1][0] in ts_of]
    assert len(from_pivots) >= 10  # strength 1: confirmed at the very close that reveals t + 1


# -- manual --------------------------------------------------------------------------------------
def test_manual_stores_the_annotation_and_steps_through_the_lock(eth_store):
    ts = eth_store.read_ohlcv(SYMBOL, TF)["ts"].to_numpy()
    labels = {int(ts[150]): "BUY", int(ts[180]): "SELL"}
    handle, session = _session(eth_store, TrainingMode.MANUAL, last=200, manual_labels=labels)
    before = weights(handle)
    stats = session.run()
    assert stats["manual_step"] == stats["training_steps"] == 2 == handle.version
    assert _steps(session) == [(t + MINUTE, (t,), (a,)) for t, a in labels.items()]
    ann = eth_store.read_annotations(SYMBOL, TF, sources=["manual"])
    assert ann.select("ts", "action", "source").rows() == [(t, a, "manual")
                                                          for t, a in labels.items()]
    assert not bit_identical(before, weights(handle))
    # after the replay, the current candle is the last one
    out = session.train_manual("hold")
    assert out["ts"] == int(ts[200]) and out["action"] == "HOLD" and handle.version == 3
    assert handle.lock.stats(session.session_id)["acquisitions"] == 3
    with pytest.raises(ParameterError, match="'LONG' is not one of"):
        session.train_manual("LONG")
    assert eth_store.read_annotations(SYMBOL, TF, sources=["manual"]).height == 3


def test_train_manual_outside_manual_mode_is_refused(eth_store):
    handle, session = _session(eth_store, TrainingMode.NONE, last=120)
    session.run()
    with pytest.raises(ParameterError, match="mode 'manual'.*'none'"):
        session.train_manual("BUY")
    assert handle.version == 0
    assert eth_store.read_annotations(SYMBOL, TF, sources=["manual"]).height == 0


def test_strategy_managers_are_per_session_and_decide_by_mode():
    a = TrainingStrategyManager(TrainingMode.PIVOTS_ONLY, TF)
    b = TrainingStrategyManager(TrainingMode.EVERY_CANDLE, TF, StrategyConfig(pivot_strength=1))
    assert a.pivot_types == ("L1L", "L1H") and b.pivot_types == ()
    assert not a.should_train_on_candle(object()) and b.should_train_on_candle(object())
    assert not b.should_train_on_candle(None)
    assert move_action(0.06) == 0 and move_action(-0.06) == 1 and move_action(0.05) == 2
    with pytest.raises(ParameterError):
        StrategyConfig(pivot_strength=0)
