"""The control panel in a real chromium (Playwright) against a real Voila server on 127.0.0.1."""
from __future__ import annotations

import re

import pytest

from tests.ui.voila_server import running_voila
from workbench.data.store import Store
from workbench.paths import NOTEBOOKS_DIR, REPORTS_DIR

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
PANEL = "/voila/render/00_control_panel.ipynb"


@pytest.fixture(scope="module")
def dashboard(ui_db, quick_model, shared_runs, tmp_path_factory):
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    env = {"WORKBENCH_DB": str(ui_db), "WORKBENCH_RUNS": str(shared_runs)}
    with running_voila(["00_control_panel"], NOTEBOOKS_DIR, log, env=env) as base:
        yield base


@pytest.fixture
def page(dashboard):
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1500})
            tab.set_default_timeout(120_000)
            tab.goto(dashboard + PANEL)
            tab.wait_for_selector("button.wb-live_none:not([disabled])", timeout=240_000)
            yield tab
        finally:
            browser.close()


def _log(page) -> str:
    return page.inner_text(".wb-log")


def test_live_inference_then_stop_then_backtest(page, ui_db, quick_model):
    REPORTS_DIR.mkdir(exist_ok=True)
    for label in ("Start Live Inference (No Training)", "Live Inference + Pivot Training",
                  "Live Inference + Per-Candle Training", "Backtest Visible Chart",
                  "Train Model", "Stop"):
        assert page.get_by_role("button", name=label, exact=True).is_visible()
    assert not page.get_by_role("button", name="Train on Current Candle (Manual)").is_visible()

    page.click("button.wb-live_none")
    # predictions arrive on the chart and in the log (at least 20, so the screenshot shows them)
    page.wait_for_function(
        "() => { const m = /(\\d+) predictions/.exec("
        "document.querySelector('.wb-chart-caption').innerText); return m && +m[1] >= 20"
        " && document.querySelector('.wb-log').innerText.includes('prediction '); }")
    page.wait_for_function(
        "() => document.querySelector('.wb-chart-caption').innerText.includes('ghost candle shown')")
    assert "PnL" in page.inner_text(".wb-status")
    assert page.is_disabled("button.wb-backtest")  # busy: the reason is listed
    assert "live session is running" in page.inner_text(".wb-reasons")
    page.screenshot(path=str(REPORTS_DIR / "voila_control_panel_live.png"), full_page=True)

    page.click("button.wb-stop")
    page.wait_for_function("() => /stopped\\n?$/m.test(document.querySelector('.wb-log').innerText)")
    page.wait_for_selector("button.wb-backtest:not([disabled])")

    page.click("button.wb-backtest")
    page.wait_for_selector(".wb-backtest-table")
    trades = int(page.inner_text(".wb-backtest-table td[data-key='# Trades']").replace(",", ""))
    backtest_id = re.search(r"backtest (bt-\S+)", page.inner_text(".wb-backtest-table")).group(1)
    # by id alone: the panel picks the newest run, and another UI test of this worker (Train
    # Model) may have added a run after quick_model
    stored = Store(ui_db).backtests()
    row = stored.filter(stored["backtest_id"] == backtest_id)
    assert row.height == 1 and int(row["n_trades"][0]) == trades
    page.screenshot(path=str(REPORTS_DIR / "voila_control_panel_backtest.png"), full_page=True)


def test_manual_session_buy_is_stored_and_trained(page, ui_db):
    before = Store(ui_db).read_annotations("ETH/USDT", "1m").height
    page.click("button.wb-live_manual")
    manual = "button.wb-manual_train"
    page.wait_for_selector(f"{manual}:not([disabled])")
    page.get_by_role("button", name="BUY", exact=True).click()
    page.click(manual)
    page.wait_for_function(
        "() => /manual BUY .*training steps 1/.test(document.querySelector('.wb-log').innerText)")
    notes = Store(ui_db).read_annotations("ETH/USDT", "1m")
    assert notes.height == before + 1
    assert notes.filter(notes["source"] == "manual")["action"].to_list()[-1] == "BUY"
    page.click("button.wb-stop")
    page.wait_for_function("() => /stopped\\n?$/m.test(document.querySelector('.wb-log').innerText)")
    assert not page.get_by_role("button", name="Train on Current Candle (Manual)").is_visible()
