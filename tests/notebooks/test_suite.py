"""The notebook suite with the CI profile through papermill, then nbval on the same notebooks.

Both run against a throw-away store and runs folder: 01_data ingests the real shipped ETH/USDT
series into it and 02_train trains the quick model that the later notebooks (and nbval) use.
07_research's sweep is then served read-only on the dashboard and checked in chromium.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.ui.voila_server import PageLog, chromium, open_page, running_voila
from workbench.paths import NOTEBOOKS_DIR, PROJECT_ROOT, REPORTS_DIR
from workbench.research.baselines import BASELINES, RANDOM
from workbench.ui.notebooks import SUITE, run_suite


@pytest.fixture(scope="module")
def suite_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    return root, {"WORKBENCH_DB": str(root / "wb.duckdb"), "WORKBENCH_RUNS": str(root / "runs")}


@pytest.fixture(scope="module")
def suite(suite_env):
    root, env = suite_env
    result = run_suite(profile="ci", reports_root=root / "reports", env=env, timeout=600)
    return result, {r.name: r for r in result.results}


def test_every_notebook_runs_with_the_ci_profile(suite):
    result, by_name = suite
    failed = {r.name: r.error for r in result.results if not r.ok}
    assert not failed
    assert set(by_name) == set(SUITE)
    index = open(result.index).read()
    for name in SUITE:
        assert os.path.isfile(by_name[name].html) and os.path.isfile(by_name[name].ipynb)
        assert f"/{name}.html" in index
        doc = json.loads(open(by_name[name].record_file).read())
        assert doc["status"] == "ok" and doc["records"] == by_name[name].records


def test_every_plotly_figure_also_goes_out_as_html(suite):
    """A figure shown only as plotly's mime type draws nowhere but JupyterLab: Voila pages load
    no plotly mime renderer (it is denied on the dashboard) and HTML reports have none, so the
    page shows an empty space. ``plots.setup_notebook()`` selects the renderer giving both."""
    _, by_name = suite
    bare = {}
    for name, result in by_name.items():
        for cell in json.loads(open(result.ipynb).read())["cells"]:
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if "application/vnd.plotly.v1+json" in data and "text/html" not in data:
                    bare.setdefault(name, []).append(cell.get("id"))
    assert not bare, bare
    shown = json.loads(open(by_name["07_research"].ipynb).read())
    figures = [out for cell in shown["cells"] for out in cell.get("outputs", [])
               if "plotly-graph-div" in "".join(out.get("data", {}).get("text/html", ""))]
    assert len(figures) >= 2  # Optuna's parallel coordinates and the per-fold equity at least
    rec = by_name["07_research"].records
    assert rec["n_trials"] == 2 and "parallel_coordinate" in rec["optuna_figures"]
    assert rec["oos_bars"] > 0  # the best trial's out-of-sample equity is drawn


CHARTS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(d => ({
  points: (d.data || []).reduce((n, t) => n + (t.x || []).length, 0),
  title: (d.layout && d.layout.title && d.layout.title.text) || ''}))"""


@pytest.mark.browser
def test_the_research_page_shows_the_suites_sweep_in_chromium(suite, suite_env, tmp_path):
    """07 on the dashboard (read-only, on the store the suite's sweep went to): the leaderboard
    with both trials and the baselines, DSR and PBO in words with the stored numbers, Optuna's
    parallel coordinates and the best trial's out-of-sample equity per fold, drawn."""
    _, env = suite_env
    rec = suite[1]["07_research"].records
    with running_voila(["07_research"], NOTEBOOKS_DIR, tmp_path / "voila.log", env=env) as base, \
            chromium() as browser:
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        log = PageLog(tab)
        open_page(tab, f"{base}/voila/render/07_research.ipynb")
        tab.wait_for_load_state("networkidle")
        tab.wait_for_selector(".js-plotly-plot", timeout=60_000)
        text = tab.inner_text("#rendered_cells")
        for row in ("trial 0", "trial 1", "flat (always HOLD)", "buy & hold",
                    "random entries (mean of"):
            assert row in text, row
        assert "After 2 tries, the chance this best result is luck is" in text
        assert f"The probability of backtest overfitting is {rec['pbo']:.0%}" in text
        charts = tab.evaluate(CHARTS)
        assert any(c["title"] == "Parallel Coordinate Plot" and c["points"] for c in charts), charts
        assert any("out-of-sample equity per fold" in c["title"] and c["points"] >= rec["oos_bars"]
                   for c in charts), charts
        (REPORTS_DIR / "screens").mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(REPORTS_DIR / "screens" / "07_research_sweep.png"),
                       full_page=True)
        log.check(base, "07_research")


def test_data_notebook_ingested_the_real_series(suite):
    rec = suite[1]["01_data"].records
    assert rec["ingest_status"] == "ingested" and rec["candles"] == 130_708
    assert rec["gaps"] == 0 and rec["pivots_shown"] > 0


def test_trained_model_is_handed_to_the_later_notebooks(suite):
    by_name = suite[1]
    run_id = by_name["02_train"].records["run_id"]
    assert by_name["02_train"].records["status"] == "completed"
    assert by_name["02_train"].records["epochs"] >= 1
    # its test report: the test split beside every baseline, with the verdict in words
    rec = by_name["02_train"].records
    assert rec["test_baselines"] == sorted([*BASELINES, RANDOM])
    assert 0 <= rec["test_model_percentile"] <= 100 and rec["test_verdict"].startswith("The model")
    for name in ("03_live_session", "04_backtest", "06_ledger"):
        assert by_name[name].records["model"] == run_id


def test_live_session_trained_on_every_candle_and_wrote_the_ledger(suite):
    live, ledger = suite[1]["03_live_session"].records, suite[1]["06_ledger"].records
    assert live["mode"] == "every_candle" and live["errors"] == 0
    assert live["predictions"] == live["candles"] > 0
    assert live["per_candle_steps"] == live["training_steps"] > 0 and live["weights_changed"]
    assert ledger["ledger_rows"] >= live["predictions"]
    assert 0.0 <= ledger["hit_rate"] <= 1.0


def test_backtest_trade_count_equals_the_cli(suite, suite_env):
    _, env = suite_env
    rec = suite[1]["04_backtest"].records
    assert rec["lookahead_passed"] is True
    out = subprocess.run(
        [sys.executable, "-c", "from workbench.cli import main; main()", "backtest",
         "--model", rec["model"], "--symbol", "ETH/USDT", "--timeframe", "1m",
         "--start", str(rec["start_ts"]), "--end", str(rec["end_ts"]), "--json"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)
    assert cli["stats"]["# Trades"] == rec["trades"]
    assert cli["stats"]["Equity Final [$]"] - cli["cash"] == pytest.approx(rec["pnl"])
    assert cli["stats"] == rec["stats"]  # the notebook's statistics block is the CLI's
    # the baselines beside it: every one, the same draws, the same verdict as the CLI's
    assert rec["baselines_verdict"] == cli["baselines"]["verdict"]
    assert rec["model_percentile"] == cli["baselines"]["random_entries"]["model_percentile"]


def test_price_model_and_panel_notebooks_recorded_values(suite):
    price, panel = suite[1]["05_price_model"].records, suite[1]["00_control_panel"].records
    assert price["rmse"] > 0 and price["cache_hit"] is False
    assert panel["models"] >= 1 and "live_none" in panel["enabled_buttons"]


@pytest.mark.slow  # the papermill suite above executes the same notebooks with the same defaults
def test_nbval_lax_with_sanitizer(suite, suite_env):
    _, env = suite_env
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval-lax",
         "--nbval-sanitize-with", str(NOTEBOOKS_DIR / "sanitize.cfg"),
         "--nbval-kernel-name", "workbench", "--nbval-cell-timeout", "600", str(NOTEBOOKS_DIR)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env={**os.environ, **env},
        timeout=1200)
    assert out.returncode == 0, out.stdout[-4000:]
    assert " passed" in out.stdout and "failed" not in out.stdout
