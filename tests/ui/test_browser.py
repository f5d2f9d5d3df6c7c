"""The control panel in a real chromium (Playwright) against a real Voila server on 127.0.0.1.

One server and one page (one kernel, one panel) for the whole module, the tests in order; each
leaves the panel idle. Run time is dominated by the page's first render.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import polars as pl
import pytest

from tests.ui.voila_server import chromium, running_voila
from workbench.backtest.stats import STATS_KEYS
from workbench.data.store import Store
from workbench.paths import NOTEBOOKS_DIR, REPORTS_DIR
from workbench.runs import read_run

pytestmark = pytest.mark.browser

PANEL = "/voila/render/00_control_panel.ipynb"
IDLE = "button.wb-live_none:not([disabled])"
LOG = "document.querySelector('.wb-log').innerText"
CHART = """() => { const d = document.querySelector('.js-plotly-plot');  // the panel's one figure
  if (!d || !d.data) return null;
  const x = d.data[0].x; return {candles: x.length, last: String(x[x.length - 1]),
  title: (d.layout.title && d.layout.title.text) || '', buys: (d.data[2].x || []).length,
  sells: (d.data[3].x || []).length}; }"""
CHART_TRADES = """() => { const d = document.querySelector('.js-plotly-plot');
  const counts = d.data.map(t => /trades? \\((\\d+)\\)$/.exec(t.name || '')).filter(m => m);
  return {candles: d.data[0].x.length, trades: counts.reduce((n, m) => n + Number(m[1]), 0)}; }"""
# Stop's latency as the user sees it, timed in the page: from the click event on Stop to the
# moment the start button is enabled again (Playwright's own actionability checks and polling
# before and after the click are not the panel's time).
STOP_CLOCK = """() => { const clock = window.wbStopClock = {};
  const stop = document.querySelector('button.wb-stop');
  const start = document.querySelector('button.wb-live_none');
  stop.addEventListener('click', () => { clock.clicked = performance.now(); },
                        {capture: true, once: true});
  new MutationObserver((_, seen) => {
    if (clock.clicked !== undefined && !start.disabled) {
      clock.idle = performance.now(); seen.disconnect(); } })
    .observe(start, {attributes: true, attributeFilter: ['disabled']}); }"""
NEWEST_LINE_IN_VIEW = """() => { const box = document.querySelector('.wb-log-box');
  const text = box.firstElementChild.getBoundingClientRect(), view = box.getBoundingClientRect();
  return text.bottom <= view.bottom + 1 && text.bottom > view.top; }"""


@pytest.fixture(scope="module")
def dashboard(ui_db, quick_model, shared_runs, tmp_path_factory):
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    env = {"WORKBENCH_DB": str(ui_db), "WORKBENCH_RUNS": str(shared_runs)}
    with running_voila(["00_control_panel"], NOTEBOOKS_DIR, log, env=env) as base:
        yield base


@pytest.fixture(scope="module")
def page(dashboard, quick_model):
    with chromium() as browser:
        tab = browser.new_page(viewport={"width": 1400, "height": 1500})
        tab.set_default_timeout(120_000)
        tab.goto(dashboard + PANEL)
        tab.wait_for_selector(IDLE, timeout=240_000)
        pick(tab, "model", quick_model)  # not the newest: other UI tests save runs too
        tab.wait_for_function(f"() => document.querySelector('.wb-model-status').innerText"
                              f".includes('{quick_model} (saved)')")
        yield tab


def pick(page, name: str, value: str) -> None:
    page.select_option(f".wb-pick-{name} select", value)


def wait_log(page, pattern: str) -> None:
    page.wait_for_function(f"() => /{pattern}/m.test({LOG})")


def run_to_end(page, button: str, mode: str) -> None:
    """Start a session with ``button`` and wait for its end (its own log: cleared at start)."""
    page.wait_for_selector(f"button.wb-{button}:not([disabled])")
    page.click(f"button.wb-{button}")
    wait_log(page, f"mode {mode},")
    wait_log(page, "session ended")
    page.wait_for_selector(IDLE)


def session_id(page) -> str:
    return re.search(r"live session (\S+):", page.inner_text(".wb-log")).group(1)


def test_live_inference_then_stop_then_backtest(page, ui_db, quick_model):
    REPORTS_DIR.mkdir(exist_ok=True)
    for label in ("Start Live Inference (No Training)", "Live Inference + Pivot Training",
                  "Live Inference + Per-Candle Training", "Backtest Visible Chart",
                  "Train Model", "Stop", "Save as run", "Reset to saved"):
        assert page.get_by_role("button", name=label, exact=True).is_visible()
    assert not page.get_by_role("button", name="Train on Current Candle (Manual)").is_visible()
    assert f"{quick_model} (saved)" in page.inner_text(".wb-model-status")
    page.wait_for_function(f"() => ({CHART})() !== null")
    drawn = page.evaluate(CHART)  # the visible range, drawn by plotly.js in the page
    assert drawn["candles"] == 120 and drawn["title"] == "ETH/USDT 1m"

    page.click("button.wb-live_none")
    page.wait_for_function(
        "() => { const m = /(\\d+) predictions/.exec("
        "document.querySelector('.wb-chart-caption').innerText); return m && +m[1] >= 20; }")
    # the figure in the page follows the session in place: its candles end at the session's
    # newest one, not at the range's end (a second FigureWidget on the page once froze it)
    page.wait_for_function(f"() => {{ const c = ({CHART})(); return c && c.title.includes(' · none')"
                           f" && c.last < '{drawn['last']}' && c.buys + c.sells > 0; }}")
    wait_log(page, "candles 1-50 ")
    assert page.is_disabled(".wb-pick-symbol select")  # the pickers wait for the session
    assert re.search(r"candle: \d+/600", page.inner_text(".wb-status"))  # 600: the default
    assert page.is_disabled("button.wb-backtest")  # busy: the reason is listed
    assert "live session is running" in page.inner_text(".wb-reasons")
    page.screenshot(path=str(REPORTS_DIR / "voila_control_panel_live.png"), full_page=True)

    page.click("button.wb-stop")
    wait_log(page, "stopped\\n?$")
    page.wait_for_selector("button.wb-backtest:not([disabled])")
    log = page.inner_text(".wb-log")
    assert log.index("session ended") > max(log.rfind("candles "), log.rfind("trade "))
    # the log box stays scrolled to its newest line (the last line's bottom is in view)
    assert page.evaluate(NEWEST_LINE_IN_VIEW)
    page.click("button.wb-backtest")
    page.wait_for_selector(".wb-backtest-table")
    trades = int(page.inner_text(".wb-backtest-table td[data-key='# Trades']").replace(",", ""))
    backtest_id = re.search(r"backtest (bt-\S+)", page.inner_text(".wb-backtest-table")).group(1)
    stored = Store(ui_db).backtests()
    row = stored.filter(stored["backtest_id"] == backtest_id)
    assert row.height == 1 and int(row["n_trades"][0]) == trades
    keys = page.eval_on_selector_all(".wb-backtest-table td[data-key]",
                                     "cells => cells.map(c => c.dataset.key)")
    assert set(STATS_KEYS) <= set(keys)  # the whole statistics block, backtesting.py's keys
    # the chart shows the backtest: its last 120 candles and, as segments, the trades among them
    page.wait_for_function(f"() => {{ const c = ({CHART})(); return c && c.title.includes('backtest'); }}")
    drawn = page.evaluate(CHART_TRADES)
    caption = page.inner_text(".wb-chart-caption")
    shown = int(re.search(r"(\d+) trades", caption).group(1))
    assert drawn["candles"] == 120 and drawn["trades"] == shown, (drawn, caption)
    assert shown <= trades
    page.screenshot(path=str(REPORTS_DIR / "voila_control_panel_backtest.png"), full_page=True)


def test_stop_at_1x_on_daily_candles_is_idle_within_half_a_second(page):
    pick(page, "symbol", "GOOG")
    page.wait_for_function("() => document.querySelector('.wb-chart-caption').innerText"
                           ".includes('GOOG 1d')")  # the chart follows the picked series
    assert "trained on ETH/USDT 1m" in page.inner_text(".wb-mismatch")  # warned, not refused
    pick(page, "speed", "1x")
    page.click("button.wb-live_none")
    page.wait_for_function("() => /candle: 1\\/\\d+/.test("
                           "document.querySelector('.wb-status').innerText)")
    time.sleep(0.5)  # in the middle of a one-day wait
    page.evaluate(STOP_CLOCK)
    t0 = time.monotonic()
    page.click("button.wb-stop")
    page.wait_for_selector(IDLE, timeout=10_000)
    harness = time.monotonic() - t0
    clock = page.evaluate("() => window.wbStopClock")
    wait_log(page, "stopped\\n?$")
    pick(page, "symbol", "ETH/USDT")
    pick(page, "timeframe", "1m")
    pick(page, "speed", "max")
    page.wait_for_selector(IDLE)
    latency = (clock["idle"] - clock["clicked"]) / 1000
    REPORTS_DIR.mkdir(exist_ok=True)
    (REPORTS_DIR / "browser_stop_latency.json").write_text(json.dumps(
        {"stop_to_idle_s": latency, "with_playwright_click_s": harness}))
    assert 0 < latency < 0.5, f"Stop took {latency:.3f} s to return the panel to idle"


def _ledger(db, session: str) -> pl.DataFrame:
    rows = Store(db).read_ledger()
    return rows.filter(pl.col("session_id") == session).sort("prediction_ts").select(
        "prediction_ts", "predicted_action", "confidence", "pred_close")


def test_pivot_training_then_saved_weights_then_save_as_run(page, ui_db, quick_model,
                                                            shared_runs):
    pick(page, "model", quick_model)
    run_to_end(page, "live_pivots", "pivots_only")
    steps = int(re.search(r"(\d+) training steps", page.inner_text(".wb-log")).group(1))
    assert steps > 0
    page.wait_for_function("() => document.querySelector('.wb-model-status').innerText"
                           f".includes('{quick_model} + {steps} steps (unsaved, session')")
    trained_session = session_id(page)

    run_to_end(page, "live_none", "none")  # "continue" unticked: from the saved weights
    plain_session = session_id(page)
    first = int(_ledger(ui_db, plain_session)["prediction_ts"].min())
    # the same range replayed by a fresh process on the saved run
    env = {**os.environ, "WORKBENCH_RUNS": str(shared_runs)}
    stats = _ledger(ui_db, plain_session)
    last_open = int(stats["prediction_ts"].max()) - 60_000  # prediction_ts is the close
    out = subprocess.run(
        [sys.executable, "-c", "from workbench.cli import main; main()", "--db", str(ui_db),
         "live", "--model", quick_model, "--symbol", "ETH/USDT", "--timeframe", "1m",
         "--start", str(first - 60_000), "--end", str(last_open), "--ledger", "--json"],
        capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    fresh = _ledger(ui_db, json.loads(out.stdout)["session_id"])
    assert fresh.height == stats.height > 0 and fresh.equals(stats)

    page.click("button.wb-save")
    wait_log(page, "as run \\S+ \\(parent")
    child = re.search(r"as run (\S+) \(parent", page.inner_text(".wb-log")).group(1)
    record = read_run(child, ui_db)
    assert record["parent_run_id"] == quick_model and record["training_steps"] == steps
    assert record["session_id"] == trained_session and record["mode"] == "pivots_only"
    page.wait_for_function("() => document.querySelector('.wb-model-status').innerText"
                           f".includes('{child} (saved)')")  # the status follows the log line
    pick(page, "model", quick_model)


def test_manual_session_starts_paused_steps_and_draws_the_label(page, ui_db):
    before = Store(ui_db).read_annotations("ETH/USDT", "1m").height
    page.click("button.wb-live_manual")
    page.wait_for_selector("button.wb-step:not([disabled])")
    page.wait_for_function("() => /candle: 0\\//.test("
                           "document.querySelector('.wb-status').innerText)")
    page.click("button.wb-step")
    page.wait_for_function("() => /candle: 1\\//.test("
                           "document.querySelector('.wb-status').innerText)")
    manual = "button.wb-manual_train"
    page.wait_for_selector(f"{manual}:not([disabled])")
    time.sleep(1.0)
    assert "candle: 1/" in page.inner_text(".wb-status")  # paused: still the same candle
    page.get_by_role("button", name="BUY", exact=True).click()
    page.click(manual)
    wait_log(page, "manual BUY .*training steps 1")
    page.wait_for_function("() => document.querySelector('.wb-chart-caption').innerText"
                           ".includes('1 manual labels')")
    notes = Store(ui_db).read_annotations("ETH/USDT", "1m")
    assert notes.height == before + 1
    assert notes.filter(notes["source"] == "manual")["action"].to_list()[-1] == "BUY"
    page.screenshot(path=str(REPORTS_DIR / "voila_control_panel_manual.png"), full_page=True)
    page.click("button.wb-stop")
    wait_log(page, "stopped\\n?$")
    assert not page.get_by_role("button", name="Train on Current Candle (Manual)").is_visible()
