"""Every dashboard page in a real chromium against a real, preheated `workbench dashboard` server.

Each page must paint without console errors, failed requests or any request leaving
127.0.0.1; a page with plotly output must show its plotly charts; closing tabs must give their
kernels back. Screenshots go to reports/screens/ for a person to judge.
"""
from __future__ import annotations

import pytest

from tests.ui.voila_server import (PageLog, chromium, kernel_count, open_page, running_dashboard,
                                   wait_kernels)
from workbench.data.store import Store
from workbench.paths import REPORTS_DIR
from workbench.ui import dashboard
from workbench.ui.voila_app import landing_entries

pytestmark = pytest.mark.browser

SCREENS = REPORTS_DIR / "screens"
CYCLES = 10
CYCLE_PAGE = "05_price_model"  # read-only, imports no TensorFlow: each view preheats a new kernel


def _stored(ui_db, shared_runs) -> tuple[int, int, int]:
    """(backtests, ledger rows, run folders): what a read-only page view must not change."""
    store = Store(ui_db)
    ledger = store.query("SELECT count(*) AS n FROM prediction_ledger")["n"][0]
    return store.backtests().height, int(ledger), len(list(shared_runs.iterdir()))


@pytest.fixture(scope="module")
def server(ui_db, quick_model, shared_runs, tmp_path_factory):
    log = tmp_path_factory.mktemp("dash-browser") / "voila.log"
    env = {"WORKBENCH_DB": str(ui_db), "WORKBENCH_RUNS": str(shared_runs)}
    before = _stored(ui_db, shared_runs)
    with running_dashboard(log, env=env) as (base, proc):
        yield base, proc
    assert _stored(ui_db, shared_runs) == before  # preheats and page views stored nothing


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def _tab(browser):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    return tab, PageLog(tab)


def test_landing_and_every_page_paint_locally_without_errors(server, browser):
    base, _ = server
    SCREENS.mkdir(parents=True, exist_ok=True)
    tab, log = _tab(browser)
    tab.goto(base + "/")
    links = tab.locator("a.wb-notebook")
    entries = landing_entries(dashboard.NOTEBOOKS_DIR)
    assert links.count() == len(entries) >= 7
    tab.screenshot(path=str(SCREENS / "landing.png"), full_page=True)
    log.check(base)
    tab.close()
    for entry in entries:
        tab, log = _tab(browser)
        try:
            seconds = open_page(tab, f"{base}/voila/render/{entry['file']}")
            tab.wait_for_load_state("networkidle")
            html = tab.content()
            assert "There was an error when executing cell" not in html, entry["file"]
            if "plotly-graph-div" in html:  # plotly output must draw (plotly.js from the server)
                tab.wait_for_selector(".js-plotly-plot", timeout=60_000)
            tab.screenshot(path=str(SCREENS / f"{entry['file'][:-6]}.png"), full_page=True)
            log.check(base, entry["file"])
        finally:  # a failing page must not keep its kernel connected for the next test
            tab.close(run_before_unload=True)
        assert seconds < 60, (entry["file"], seconds)  # timing goals live in bench/dashboard.py


def test_kernels_return_to_baseline_after_open_and_close_cycles(server, browser):
    base, proc = server
    baseline = wait_kernels(proc, len(dashboard.dashboard_notebooks()))  # one preheated per page
    assert baseline == len(dashboard.dashboard_notebooks())
    for _ in range(CYCLES):
        tab, log = _tab(browser)
        try:
            open_page(tab, f"{base}/voila/render/{CYCLE_PAGE}.ipynb")
            log.check(base, CYCLE_PAGE)
        finally:  # a person closing the tab: the beacon shuts it down
            tab.close(run_before_unload=True)
    assert wait_kernels(proc, baseline, deadline_s=90) == baseline, kernel_count(proc)
