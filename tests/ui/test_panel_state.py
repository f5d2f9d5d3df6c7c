"""The control panel's pure state machine: visibility, enabling and the reasons shown."""
from __future__ import annotations

import pytest

from workbench.live.modes import TrainingMode
from workbench.ui.panel_state import (LABELS, LIVE_BUTTONS, Activity, Button, PanelFacts,
                                      button_states)

READY = PanelFacts(has_model=True, has_candles=True)
STARTS = list(LIVE_BUTTONS.values()) + [Button.BACKTEST]


def enabled(facts: PanelFacts) -> set[Button]:
    return {b for b, s in button_states(facts).items() if s.enabled}


def visible(facts: PanelFacts) -> set[Button]:
    return {b for b, s in button_states(facts).items() if s.visible}


def test_every_mode_has_a_start_button_and_every_button_a_label():
    assert set(LIVE_BUTTONS) == set(TrainingMode)
    assert set(LABELS) == set(Button)
    assert LABELS[Button.LIVE_NONE] == "Start Live Inference (No Training)"
    assert LABELS[Button.MANUAL_TRAIN] == "Train on Current Candle (Manual)"


def test_idle_and_ready_enables_every_start_but_not_stop():
    assert enabled(READY) == set(STARTS) | {Button.TRAIN}
    stop = button_states(READY)[Button.STOP]
    assert not stop.enabled and stop.reason == "nothing is running"
    assert Button.MANUAL_TRAIN not in visible(READY)


def test_without_model_only_training_can_start_and_the_reason_says_so():
    facts = PanelFacts(has_model=False, has_candles=True)
    assert enabled(facts) == {Button.TRAIN}
    for b in STARTS:
        assert "pick a model" in button_states(facts)[b].reason


def test_without_candles_nothing_can_start():
    facts = PanelFacts(has_model=True, has_candles=False)
    assert enabled(facts) == set()
    assert "no candles" in button_states(facts)[Button.TRAIN].reason


@pytest.mark.parametrize("mode", list(TrainingMode))
def test_a_live_session_allows_stop_pause_and_batch_training_only(mode):
    facts = PanelFacts(live_mode=mode, has_model=True, has_candles=True, has_current_candle=True)
    assert facts.activity is Activity.LIVE
    expected = {Button.STOP, Button.TRAIN, Button.PAUSE}
    if mode is TrainingMode.MANUAL:
        expected.add(Button.MANUAL_TRAIN)
    assert enabled(facts) == expected
    for b in STARTS:
        assert "live session is running" in button_states(facts)[b].reason


def test_manual_button_visible_only_in_a_manual_session():
    for mode in TrainingMode:
        facts = PanelFacts(live_mode=mode, has_model=True, has_candles=True)
        assert (Button.MANUAL_TRAIN in visible(facts)) == (mode is TrainingMode.MANUAL)


def test_manual_button_waits_for_a_candle_and_for_the_running_step():
    base = PanelFacts(live_mode=TrainingMode.MANUAL, has_model=True, has_candles=True)
    first = button_states(base)[Button.MANUAL_TRAIN]
    assert first.visible and not first.enabled and "first closed candle" in first.reason
    stepping = PanelFacts(live_mode=TrainingMode.MANUAL, has_model=True, has_candles=True,
                          has_current_candle=True, manual_step_running=True)
    assert "step is running" in button_states(stepping)[Button.MANUAL_TRAIN].reason


def test_backtest_blocks_everything_but_stop():
    facts = PanelFacts(backtest=True, has_model=True, has_candles=True)
    assert enabled(facts) == {Button.STOP}
    assert "backtest is running" in button_states(facts)[Button.TRAIN].reason


def test_training_beside_live_blocks_a_second_training():
    facts = PanelFacts(live_mode=TrainingMode.EVERY_CANDLE, training=True, has_model=True,
                       has_candles=True, has_current_candle=True)
    assert facts.activity is Activity.LIVE_AND_TRAINING
    assert enabled(facts) == {Button.STOP, Button.PAUSE}


def test_stopping_disables_everything_and_hides_manual():
    facts = PanelFacts(live_mode=TrainingMode.MANUAL, stopping=True, has_model=True,
                       has_candles=True, has_current_candle=True)
    assert enabled(facts) == set()
    assert Button.MANUAL_TRAIN not in visible(facts)
    assert "stopping" in button_states(facts)[Button.STOP].reason


def test_every_disabled_visible_button_has_a_reason():
    samples = [READY, PanelFacts(), PanelFacts(training=True, has_candles=True),
               PanelFacts(backtest=True), PanelFacts(stopping=True),
               PanelFacts(live_mode=TrainingMode.MANUAL, has_candles=True, has_model=True)]
    for facts in samples:
        for button, state in button_states(facts).items():
            if state.visible and not state.enabled:
                assert state.reason, (facts, button)


def test_pause_resume_and_step_follow_the_session():
    running = PanelFacts(live_mode=TrainingMode.MANUAL, has_model=True, has_candles=True)
    paused = PanelFacts(live_mode=TrainingMode.MANUAL, has_model=True, has_candles=True,
                        has_current_candle=True, paused=True)
    assert {Button.PAUSE} <= enabled(running) and not {Button.RESUME, Button.STEP} & enabled(
        running)
    assert {Button.RESUME, Button.STEP, Button.MANUAL_TRAIN} <= enabled(paused)
    assert Button.PAUSE not in enabled(paused)
    assert not {Button.PAUSE, Button.RESUME, Button.STEP} & visible(READY)  # no session


def test_a_series_shorter_than_the_window_refuses_every_start_with_the_reason():
    why = "ETH/USDT 1M has 3 candle(s); model R needs a window of 32"
    facts = PanelFacts(has_model=True, has_candles=True, refusal=why)
    for b in STARTS:
        assert button_states(facts)[b].reason == why and b not in enabled(facts)
    assert Button.TRAIN in enabled(facts)


def test_save_reset_and_backtest_current_need_unsaved_steps_and_an_idle_panel():
    lineage = {Button.SAVE, Button.RESET, Button.BACKTEST_CURRENT}
    assert not lineage & enabled(READY)
    assert "no unsaved training steps" in button_states(READY)[Button.SAVE].reason
    unsaved = PanelFacts(has_model=True, has_candles=True, unsaved_steps=12)
    assert lineage <= enabled(unsaved)
    live = PanelFacts(live_mode=TrainingMode.NONE, has_model=True, has_candles=True,
                      unsaved_steps=12)
    assert not lineage & enabled(live)


def test_an_exchange_source_refuses_manual_and_hides_pause_and_step():
    """An exchange session follows candles as they close: no pause or step, and the manual
    mode (which labels a paused replay's current candle) needs the history replay source."""
    idle = PanelFacts(has_model=True, has_candles=True, exchange=True)
    assert enabled(idle) == set(STARTS) - {Button.LIVE_MANUAL} | {Button.TRAIN}
    assert "history replay" in button_states(idle)[Button.LIVE_MANUAL].reason
    running = PanelFacts(live_mode=TrainingMode.NONE, has_model=True, has_candles=True,
                         exchange=True)
    assert not {Button.PAUSE, Button.RESUME, Button.STEP} & visible(running)
    assert Button.STOP in enabled(running)
    busy = button_states(running)[Button.LIVE_MANUAL]  # busy wins over the source's reason
    assert not busy.enabled and "press Stop first" in busy.reason
