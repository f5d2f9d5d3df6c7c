"""The control panel driven in-process: live session, stop, backtest, manual flow, training."""
from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest

from workbench.data.store import Store
from workbench.live.modes import TrainingMode
from workbench.live.session import MANUAL_STEP
from workbench.ui.panel import ControlPanel
from workbench.ui.panel_state import Button


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def panel(ui_db, quick_model):
    p = ControlPanel(db=str(ui_db), candles=300, speed="600x", model=quick_model)
    p.show()
    yield p
    p.stop()
    assert p.wait_idle(60)


def test_panel_lists_the_model_and_enables_starts(panel, quick_model):
    assert panel.model.value == quick_model
    assert not panel.buttons[Button.LIVE_NONE].disabled
    assert panel.buttons[Button.STOP].disabled and panel.buttons[Button.STOP].tooltip
    assert panel.buttons[Button.MANUAL_TRAIN].layout.display == "none"
    price = panel.chart.data[0]  # the visible range is drawn: a plotly FigureWidget's candles
    assert len(price.x) == panel.chart_candles and price.type == "candlestick"


def test_live_inference_predicts_updates_chart_and_log_then_stops(panel):
    panel.log("left over from before")
    panel.buttons[Button.LIVE_NONE].click()
    assert panel.session is not None and panel.session.mode is TrainingMode.NONE
    assert panel.buttons[Button.LIVE_NONE].disabled  # cannot start twice
    assert "live session is running" in panel.buttons[Button.BACKTEST].tooltip
    assert panel.symbol.disabled and panel.timeframe.disabled and panel.model.disabled
    assert panel.log_lines[0].split(" ", 1)[1].startswith("live session")  # cleared per session
    assert wait_until(lambda: "predictions" in panel.chart_caption.value
                      and any(" candles 1-50 " in line for line in panel.log_lines), 60)
    assert "PnL" in panel.status.value and "ghost candle" in panel.chart_caption.value
    assert "/300" in panel.status.value and panel.progress.description == "candles"
    assert 0 < panel.progress.value < 1
    panel.buttons[Button.STOP].click()
    assert panel.wait_idle(30)
    stats = panel.session.stats()
    assert stats["predictions"] > 0 and stats["training_steps"] == 0
    lines = [line.split(" ", 1)[1] for line in panel.log_lines]
    ended = next(i for i, line in enumerate(lines) if line.startswith("session ended"))
    assert not any(line.startswith(("candles ", "trade ")) for line in lines[ended:])
    assert lines[-1] == "stopped"
    assert not panel.buttons[Button.BACKTEST].disabled and not panel.symbol.disabled
    assert panel.progress.description == "idle"
    assert f"{panel.model.value} (saved)" in panel.model_status.value  # no training: saved


def test_backtest_visible_chart_fills_the_result_table(panel):
    from workbench.backtest.engine import BacktestConfig, run_backtest
    from workbench.ui import prepare

    panel.buttons[Button.BACKTEST].click()
    assert panel.wait_idle(120)
    result = panel.last_backtest
    assert result is not None and "wb-backtest-table" in panel.results.value
    assert f"<td data-key='# Trades'>{result.stats['# Trades']}</td>" in panel.results.value
    assert "Sharpe Ratio" in panel.results.value and "days a year" in panel.results.value
    # the chart shows the backtest: its last candles and, as entry→exit segments, its trades
    price = panel.chart.data[0]
    assert len(price.x) == panel.chart_candles
    first = int(price.x[0].astype("datetime64[ms]").astype(np.int64))
    shown = result.trades.filter(pl.col("entry_ts") >= first)
    segments = [trace for trace in panel.chart.data if "trade" in (trace.name or "")]
    assert sum(len(t.x) // 3 for t in segments if t.x is not None) == shown.height
    assert f"{shown.height} trades" in panel.chart_caption.value and shown.height > 0
    # a new view (a Voila page) starts from the backtest as drawn, saved once: the idle tick
    # after the job finds nothing changed since the draw saved it
    saved, layout = panel.chart._widget_data, panel.chart._widget_layout
    assert len(saved[0]["x"]) == panel.chart_candles
    assert layout["title"]["text"] == panel.chart.layout.title.text
    assert layout["title"]["text"].startswith("backtest of")
    panel.live_chart.settle()
    assert panel.chart._widget_data is saved
    panel.live_chart.show_equity([first], [1.0])  # a change: the next settle saves it
    panel.live_chart.settle()
    assert panel.chart._widget_data is not saved
    first, last = prepare.pick_range(panel.store, "ETH/USDT", "1m", candles=300)
    twin = run_backtest(BacktestConfig(symbol="ETH/USDT", timeframe="1m", start=first, end=last,
                                       model=panel.model.value, persist=False),
                        store=panel.store)
    assert twin.stats["# Trades"] == result.stats["# Trades"]
    assert twin.stats["Equity Final [$]"] == pytest.approx(result.stats["Equity Final [$]"])


def test_manual_session_starts_paused_steps_and_labels_the_current_candle(panel, ui_db):
    panel.buttons[Button.LIVE_MANUAL].click()
    manual = panel.buttons[Button.MANUAL_TRAIN]
    assert panel.manual_box.layout.display is None
    assert wait_until(lambda: panel.session.state == "paused", 10)
    assert panel.session.counts["candles"] == 0 and manual.disabled
    assert not panel.buttons[Button.STEP].disabled and panel.buttons[Button.PAUSE].disabled
    panel.buttons[Button.STEP].click()
    assert wait_until(lambda: not manual.disabled, 30), manual.tooltip
    time.sleep(0.3)
    assert panel.session.counts["candles"] == 1  # one candle, then paused again
    panel.manual_action.value = "BUY"
    manual.click()
    assert wait_until(lambda: panel.session.counts[MANUAL_STEP] == 1, 60)
    notes = Store(ui_db).read_annotations("ETH/USDT", "1m")
    assert notes.filter(notes["source"] == "manual")["action"].to_list()[-1] == "BUY"
    assert wait_until(lambda: any("manual BUY" in line and "training steps 1" in line
                                  for line in panel.log_lines), 10)
    assert wait_until(lambda: "1 manual labels" in panel.chart_caption.value, 10)
    panel.buttons[Button.RESUME].click()
    assert wait_until(lambda: panel.session.counts["candles"] > 1, 30)
    panel.buttons[Button.STOP].click()
    assert panel.wait_idle(30)
    assert panel.manual_box.layout.display == "none"


def test_stop_interrupts_a_paced_replay_at_once(ui_db, quick_model):
    """At 1x on daily candles each wait is a day; Stop must not wait for it."""
    p = ControlPanel(db=str(ui_db), symbol="GOOG", timeframe="1d", candles=300, speed="1x",
                     model=quick_model)
    p.buttons[Button.LIVE_NONE].click()
    assert wait_until(lambda: p.session.counts["candles"] == 1, 30)
    time.sleep(0.2)
    t0 = time.monotonic()
    p.buttons[Button.STOP].click()
    # idle for the user: the start buttons are enabled again (what the browser test times)
    assert wait_until(lambda: not p.buttons[Button.LIVE_NONE].disabled, 10)
    latency = time.monotonic() - t0
    assert wait_until(lambda: p.log_lines[-1].endswith("stopped"), 5)
    assert p.wait_idle(10)  # then the ticker's last refresh saves the figure and ends
    assert latency < 2.0  # the browser test holds it to 0.5 s from the click event
    assert p.session.stats()["state"] == "stopped" and p.session.counts["candles"] == 1


def test_worker_threads_only_set_traits(panel):
    import threading

    done = threading.Event()

    def worker():
        panel.log("from a worker thread")
        done.set()

    threading.Thread(target=worker).start()
    assert done.wait(5)
    assert "from a worker thread" in panel.log_output.value
    assert panel.log_lines[-1].endswith("from a worker thread")


def test_train_model_trains_a_copy_into_a_child_run_on_all_annotations(panel, quick_model):
    """Train Model used to change the picked run's in-memory weights (and a running session's
    model); now it trains a copy of them into a new run that names its parent."""
    import json

    from workbench.train.runs import read_run, run_path

    panel.buttons[Button.LIVE_NONE].click()  # a session whose model must not change
    assert wait_until(lambda: panel.session.counts["predictions"] > 0, 30)
    panel.buttons[Button.STOP].click()
    assert panel.wait_idle(30)
    live = panel.slot.live
    panel.buttons[Button.TRAIN].click()
    assert panel.wait_idle(180)
    run_id = panel._run_handle.run_id
    record = read_run(run_id)
    assert record["status"] == "completed" and record["global_step"] > 0
    assert record["parent_run_id"] == quick_model
    frozen = json.loads((run_path(run_id) / "config.json").read_text())
    assert frozen["data"]["labels"] == ["manual", "pivot", "rule"]
    assert live.version == 0 and panel.slot.unsaved_steps(quick_model) == 0
    assert panel.model.value == quick_model  # the pick stays; the new run is listed
    assert run_id in panel.model.options
    assert any(f"training run {run_id} completed (parent {quick_model})" in line
               for line in panel.log_lines)
