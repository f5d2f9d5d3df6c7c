"""Dashboard first paint per page: preheated kernels (the dashboard's setting) vs none.

A temporary store holds the last 3,000 real ETH/USDT 1m candles and one quick model, so every
page has content. For each setting a real dashboard server starts (its cold start is timed until
every page's kernel pool is filled, or until it answers without pools) and a real chromium opens
the landing page and then every notebook page, one tab each, closing it as a person would.
First paint is the time from navigation until Voila shows the rendered cells (goal: <= 3 s);
"charts drawn" is when every plotly chart of the page has been drawn, which a dashboard page
starts once its cells are shown.
The tabs share one browser context, as one person's browser does: what the first page fetched
(Voila's bundles, plotly.js from the dashboard server) later pages take from the cache.
The kernel count (the server's child processes) is recorded before and after the views.

Run: ``.venv/bin/python bench/dashboard.py``; writes ``reports/bench/dashboard.json``.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).parent))
from _common import write_report  # noqa: E402

from tests.ui import voila_server  # noqa: E402
from workbench.paths import DATA_DIR  # noqa: E402
from workbench.ui import dashboard  # noqa: E402

GOAL_S = 3.0
CANDLES = 3000
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def make_store(folder: Path) -> dict[str, str]:
    """Write the ETH slice and train the quick model; return the kernels' environment."""
    import polars as pl
    import torch

    from workbench.data.store import Store
    from workbench.train.runs import train
    from workbench.ui import prepare

    env = {"WORKBENCH_DB": str(folder / "wb.duckdb"), "WORKBENCH_RUNS": str(folder / "runs")}
    os.environ.update(env)
    torch.set_num_threads(1)
    store = Store(env["WORKBENCH_DB"])
    frame = pl.read_parquet(DATA_DIR / "binance_ethusdt_1m.parquet").tail(CANDLES)
    store.replace_series("ETH/USDT", "1m", frame)
    train(prepare.quick_config(store, "ETH/USDT", "1m", epochs=1, max_windows=400))
    return env


CHARTS_DRAWN_JS = """() => {
    const all = document.querySelectorAll('.plotly-graph-div').length;
    return document.querySelectorAll('.plotly-graph-div.js-plotly-plot').length >= all;
}"""


def charts_drawn(tab, timeout_ms: int = 120_000) -> float:
    """Seconds from navigation until every plotly chart of the page is drawn (after first paint:
    a dashboard page loads plotly.js once its cells are shown)."""
    tab.wait_for_function(CHARTS_DRAWN_JS, timeout=timeout_ms)
    return tab.evaluate("() => performance.now()") / 1000.0


def measure(env: dict[str, str], folder: Path, preheat: bool) -> dict:
    """Start a dashboard; return its cold start, first paint per page and kernel counts."""
    from playwright.sync_api import sync_playwright

    names = dashboard.dashboard_notebooks()
    port, log_path = voila_server.free_port(), folder / f"voila-preheat-{preheat}.log"
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        proc, state = dashboard.launch(port, env=env, log_file=log, preheat=preheat)
        try:
            base = f"http://127.0.0.1:{port}"
            voila_server.wait_http(base + "/", proc)
            before = len(names) if preheat else 0
            if preheat:  # every pool kernel has run its notebook
                voila_server.wait_pools_filled(log_path, names, deadline_s=600)
                voila_server.wait_settled(proc, before, deadline_s=600)
            cold = time.perf_counter() - t0
            paints, charts = {}, {}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                person = browser.new_context()  # one person's browser: its cache is shared
                tab = person.new_page()
                tab.goto(base + "/")
                paints["landing"] = tab.evaluate(
                    "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
                ) / 1000
                tab.close()
                for name in names:  # each after the pools refilled: a page opened a bit later
                    voila_server.wait_settled(proc, before, deadline_s=600)
                    tab = person.new_page()
                    paints[name] = voila_server.open_page(tab, f"{base}/voila/render/{name}.ipynb",
                                                          timeout_ms=600_000)
                    charts[name] = charts_drawn(tab)
                    tab.close(run_before_unload=True)
                    print(f"   preheat={preheat!s:5} {name:18} first paint {paints[name]:6.2f} s, "
                          f"charts drawn {charts[name]:6.2f} s", flush=True)
                browser.close()
            after = voila_server.wait_kernels(proc, before, 150)
        finally:
            dashboard.stop(proc, state)
    return {"cold_start_s": round(cold, 2), "first_paint_s": {k: round(v, 2) for k, v in
                                                            paints.items()},
            "charts_drawn_s": {k: round(v, 2) for k, v in charts.items()},
            "kernels_before": before, "kernels_after_views": after}


def main() -> None:
    from workbench.ui.kernel_startup import quiet_libraries

    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        folder = Path(tmp)
        env = make_store(folder)
        runs = {"preheat": measure(env, folder, True), "no_preheat": measure(env, folder, False)}
    hot, cold = runs["preheat"]["first_paint_s"], runs["no_preheat"]["first_paint_s"]
    drawn = runs["preheat"]["charts_drawn_s"]
    print(f"\n{'page':18} {'preheated':>10} {'no preheat':>11} {'ratio':>6}  goal <= {GOAL_S} s"
          f"  {'charts drawn (preheated)':>25}")
    for page in hot:
        ratio = cold[page] / hot[page] if hot[page] else float("nan")
        mark = "ok" if hot[page] <= GOAL_S else "OVER"
        print(f"{page:18} {hot[page]:9.2f}s {cold[page]:10.2f}s {ratio:5.1f}x  {mark:4}"
              f"  {drawn.get(page, 0):24.2f}s")
    for key, run in runs.items():
        print(f"{key}: cold start {run['cold_start_s']} s, kernels {run['kernels_before']} "
              f"before the views, {run['kernels_after_views']} after")
    write_report("dashboard", {"goal_first_paint_s": GOAL_S, "candles": CANDLES,
                               "pages_within_goal": sum(v <= GOAL_S for v in hot.values()),
                               "pages": len(hot), **runs})


if __name__ == "__main__":
    main()
