"""HTML reports render offline (widget snapshot, inlined plotly) and carry no library noise.

Small real notebooks run through the real papermill runner; the reports are then opened in a
real chromium that may fetch nothing but the file itself.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.ui.nbfactory import make_notebook
from workbench.ui import notebooks as nbrun

WIDGETS = '''import ipywidgets as w
out = w.Output()
with out:
    print("captured-line-5150")
panel = w.VBox([w.HTML("<b>status-7731</b>"), w.Button(description="Start-4242"),
                w.Dropdown(options=["alpha", "beta-6262"], value="beta-6262", description="pick"),
                out])
panel'''
PLOTLY = '''import plotly.graph_objects as go
go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name="series-8383"))'''
NOISE = '''import logging, warnings
import lightning.pytorch  # adds its own console handler when imported
warnings.warn("deprecated-noise-1111", DeprecationWarning)
warnings.warn("future-noise-2222", FutureWarning)
logging.getLogger("lightning.pytorch.utilities.rank_zero").info("lightning-info-3333")
logging.getLogger("lightning.pytorch").warning("lightning-warn-4444")
logging.getLogger("tensorflow").warning("tf-warn-5555")
logging.getLogger("lightning.pytorch").error("lightning-error-7777")
print("result-line-6666")'''
ERROR = 'raise RuntimeError("real-error-9999")'


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    d = tmp_path_factory.mktemp("offline")
    make_notebook(d / "nbs" / "widgets.ipynb", 'x = 1  # unused', WIDGETS, PLOTLY, NOISE)
    make_notebook(d / "nbs" / "broken.ipynb", 'x = 1  # unused', NOISE, ERROR)
    result = nbrun.run_suite(["widgets", "broken"], reports_root=d / "reports",
                             notebooks_dir=d / "nbs", date="2026-01-03", timeout=120)
    return {r.name: r for r in result.results}


def _external_refs(page: str) -> list[str]:
    """URLs a browser would fetch: src/href of script, link, img and iframe tags."""
    return re.findall(r"""<(?:script|link|img|iframe)\b[^>]*?(?:src|href)\s*=\s*["']"""
                      r"""((?:https?:)?//[^"']+)""", page)


def test_report_has_no_cdn_reference_and_a_static_widget_snapshot(reports):
    page = Path(reports["widgets"].html).read_text()
    assert not _external_refs(page), _external_refs(page)[:5]
    for text in ("status-7731", "Start-4242", "beta-6262", "captured-line-5150", "series-8383"):
        assert text in page, text
    assert "application/vnd.jupyter.widget-view+json" not in page  # no widget manager needed


def test_library_noise_stays_out_and_real_errors_show(reports):
    assert reports["widgets"].ok and not reports["broken"].ok
    nb = json.loads(Path(reports["widgets"].ipynb).read_text())
    streams = [o for c in nb["cells"] for o in c.get("outputs", [])
               if o.get("output_type") == "stream"]
    stderr = "".join("".join(o["text"]) for o in streams if o["name"] == "stderr")
    assert stderr.count("lightning-error-7777") == 1 and len(stderr.splitlines()) == 1, stderr
    text = json.dumps([c.get("outputs", []) for c in nb["cells"]])  # outputs, not sources
    for noise in ("deprecated-noise-1111", "future-noise-2222", "lightning-info-3333",
                  "lightning-warn-4444", "tf-warn-5555"):
        assert noise not in text, noise
    assert "result-line-6666" in text
    assert "lightning-error-7777" in text  # a logged error still shows
    broken = Path(reports["broken"].html).read_text()
    assert "real-error-9999" in broken and "real-error-9999" in reports["broken"].error
    assert "deprecated-noise-1111" not in broken


@pytest.mark.browser
def test_report_renders_in_chromium_with_the_network_cut(reports):
    from playwright.sync_api import sync_playwright

    html_file = Path(reports["widgets"].html).resolve()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            tab = browser.new_page()
            asked, errors = [], []
            tab.route("**/*", lambda route: (asked.append(route.request.url), route.abort()
                                             if not route.request.url.startswith("file:")
                                             else route.continue_()))
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(html_file.as_uri())
            tab.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
            assert tab.get_by_text("status-7731").is_visible()
            assert tab.get_by_role("button", name="Start-4242").is_visible()
        finally:
            browser.close()
    assert not [u for u in asked if not u.startswith(("file:", "data:"))], asked
    assert not errors, errors


def test_index_shows_iso_times_units_and_links_overview_and_benchmarks(tmp_path):
    day = tmp_path / "2026-01-04"
    day.mkdir()
    (day / "04_backtest.ipynb").write_text("{}")
    (day / "04_backtest.json").write_text(json.dumps({
        "name": "04_backtest", "status": "ok", "seconds": 12.345,
        "records": {"start_ts": 1748989200000, "return_pct": -2.41, "pnl": -240.75,
                    "trades": 16, "total_s": 3.21}}))
    (tmp_path / "overview.png").write_bytes(b"\x89PNG")
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "dashboard.json").write_text(json.dumps(
        {"benchmark": "dashboard", "measured_at": "2026-01-04T05:00:00Z"}))
    page = nbrun.write_index(tmp_path).read_text()
    assert "start_ts = 2025-06-03 22:20 UTC" in page
    assert "return_pct = -2.41 %" in page and "pnl = -240.75 $" in page
    assert "trades = 16" in page and "total_s = 3.2 s" in page and "12.3 s" in page
    assert "href='overview.png'" in page and "href='bench/dashboard.json'" in page
    assert re.search(r"generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
