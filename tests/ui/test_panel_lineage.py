"""The panel's model lineage in-process: sessions start from saved weights, unsaved steps are
shown, saved as a child run or reset; the saved run's bytes never change; mismatches are shown
and a too-short series refuses every start."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from workbench.live.modes import TrainingMode
from workbench.live.session import LiveSession
from workbench.runs import read_run, run_path
from workbench.train.handle import load_model
from workbench.ui import prepare
from workbench.ui.panel import ControlPanel
from workbench.ui.panel_state import Button


def digests(run_id, db) -> dict:
    folder = run_path(run_id, db) / "checkpoints"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.ckpt")}


@pytest.fixture
def panel(ui_db, quick_model):
    p = ControlPanel(db=str(ui_db), candles=300, speed="max", model=quick_model)
    p.show()
    yield p
    p.stop()
    assert p.wait_idle(60)


def _probs(session) -> list:
    return [p["probs"] for p in session.snapshot()["predictions"]]


def test_training_is_shown_unsaved_and_the_next_session_starts_from_saved_weights(
        panel, ui_db, quick_model):
    before = digests(quick_model, ui_db)
    panel.buttons[Button.LIVE_PIVOTS].click()
    assert panel.wait_idle(120)
    trained = panel.session
    steps = trained.counts["training_steps"]
    assert steps > 0
    assert (f"{quick_model} + {steps} steps (unsaved, session {trained.session_id})"
            in panel.model_status.value)
    assert not panel.buttons[Button.SAVE].disabled and not panel.buttons[Button.RESET].disabled
    stored = panel.store.backtests().height
    panel.buttons[Button.BACKTEST_CURRENT].click()  # the unsaved weights, labelled, not stored
    assert panel.wait_idle(120)
    assert f"of {quick_model} + {steps} steps (unsaved" in panel.results.value
    assert panel.last_backtest.model_version == steps
    assert panel.store.backtests().height == stored

    panel.buttons[Button.LIVE_NONE].click()  # "continue" unticked: the saved weights
    assert panel.wait_idle(120)
    plain = panel.session
    assert plain.handle is not trained.handle and plain.stats()["model_version"] == 0
    first, last = prepare.pick_range(panel.store, "ETH/USDT", "1m", candles=300)
    fresh = LiveSession(load_model(quick_model, ui_db), panel.store, "ETH/USDT", "1m",
                        TrainingMode.NONE, first, last)
    fresh.run()
    shown = _probs(plain)  # the panel keeps the newest 2 x chart_candles predictions
    assert len(shown) == 240 and np.array_equal(np.array(shown), np.array(_probs(fresh)[-240:]))
    assert plain.signals() == fresh.signals()
    assert "kept:" in panel.model_status.value  # the pivot-trained weights are still there

    panel.continue_model.value = True  # explicitly continue the trained model
    panel.buttons[Button.LIVE_NONE].click()
    assert panel.wait_idle(120)
    assert panel.session.handle is trained.handle
    assert panel.session.stats()["model_version"] == steps

    child = panel.save_as_run()
    record = read_run(child, ui_db)
    assert record["parent_run_id"] == quick_model and record["training_steps"] == steps
    assert record["session_id"] == trained.session_id and record["mode"] == "pivots_only"
    assert record["candle_range"] == [first, last]
    assert panel.model.value == child and f"{child} (saved)" in panel.model_status.value
    assert digests(quick_model, ui_db) == before  # after a training session and a save
    panel.model.value = quick_model  # the parent again: nothing unsaved any more
    assert panel.buttons[Button.SAVE].disabled


def test_reset_drops_the_unsaved_weights(ui_db, quick_model):
    from workbench.ui.panel_model import ModelSlot

    slot = ModelSlot(ui_db)
    handle = slot.for_session(quick_model, continue_current=False)
    assert slot.label(quick_model) == f"{quick_model} (saved)"
    windows = np.zeros((1, handle.window, 8), dtype=np.float32)
    handle.train_step(windows, [0], np.zeros((1, 4), np.float32), operation="t", session="s")
    assert slot.unsaved_steps(quick_model) == 1 and "+ 1 steps (unsaved" in slot.label(
        quick_model)
    fork = slot.for_training(quick_model)  # "Train Model" gets a copy, never the live model
    assert fork is not handle and fork.steps == 1
    assert slot.for_session(quick_model, continue_current=True) is handle
    slot.reset()
    assert slot.unsaved_steps(quick_model) == 0
    assert slot.for_session(quick_model, continue_current=True) is not handle


def test_mismatch_warns_and_a_short_series_refuses_every_start(panel, quick_model):
    assert panel.mismatch.value == ""
    panel.timeframe.value = "5m"
    assert "trained on ETH/USDT 1m" in panel.mismatch.value
    assert not panel.buttons[Button.LIVE_NONE].disabled  # a warning, not a refusal
    panel.timeframe.value = "1d"
    for button in (Button.LIVE_NONE, Button.LIVE_MANUAL, Button.BACKTEST):
        assert panel.buttons[button].disabled
        assert "needs a window of" in panel.buttons[button].tooltip
    assert "needs a window of" in panel.reasons.value
    assert "visible range: ETH/USDT 1d" in panel.chart_caption.value  # the chart follows
