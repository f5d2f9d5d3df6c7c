"""``make demo``: the main job on the embedded default (DuckDB file, shipped data).

Each step prints what it did and its headline numbers; a step that fails stops the demo with a
non-zero exit status and its error.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

from workbench.data.store import Store
from workbench.paths import REPORTS_DIR

ETH = ("ETH/USDT", "1m")
_STATE: dict = {}  # what later steps need from earlier ones (the trained run id)


def _step(title: str, fn: Callable[[Store], None], store: Store) -> None:
    print(f"\n== {title}", flush=True)
    t0 = time.perf_counter()
    fn(store)
    print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)


def ingest(store: Store) -> None:
    """Ingest the shipped series and print one summary line each."""
    from workbench.data.ingest import ingest_shipped

    for s in ingest_shipped(store):
        d = s.to_dict()
        print(f"   {d['symbol']:9} {d['timeframe']:3} {d['status']:8} rows_added={d['rows_added']:>7,}"
              f"  duplicates={d['duplicates_dropped']}  gaps={d['gaps']}  "
              f"{d['first_ts_iso']} → {d['last_ts_iso']}  {d['seconds']:.2f} s")


def overview(store: Store) -> None:
    """Write reports/overview.png: ETH/USDT candles with L1-L3 pivots and their confirmations."""
    from workbench.ui.charts import overview_png

    path = overview_png(store, REPORTS_DIR / "overview.png")
    print(f"   wrote {path}")


def train_quick(store: Store) -> None:
    """Train the quick transformer on ETH/USDT 1m; print its run id and best metrics."""
    from workbench.train import quick_demo

    _STATE["run_id"] = quick_demo(store)["run_id"]


def live_modes(store: Store, candles: int = 300) -> None:
    """Replay the last ``candles`` ETH/USDT 1m candles in each training mode."""
    from workbench.live.modes import TrainingMode
    from workbench.live.session import LiveSession, SessionConfig
    from workbench.train.handle import load_model

    ts = store.read_ohlcv(*ETH, store.last_ts(*ETH) - candles * 60_000)["ts"].to_list()
    labels = {ts[len(ts) // 3]: "BUY", ts[2 * len(ts) // 3]: "SELL"}  # mode manual's clicks
    for mode in TrainingMode:
        session = LiveSession(load_model(_STATE["run_id"], store.path), store, *ETH, mode, ts[0], ts[-1],
                              config=SessionConfig(manual_labels=labels))
        st = session.run()
        print(f"   {mode.value:12} candles={st['candles']} predictions={st['predictions']} "
              f"steps={st['training_steps']} lock_waits={st['lock_waits']} "
              f"signals={st['signals']} return={st['pnl']['return_pct']:+.3f}% "
              f"errors={st['errors']} ({st['candles_per_s']} candles/s)")


def live_exchange(store: Store, live: int = 100, backfill: int = 100) -> None:
    """Follow the local exchange (``workbench exchange-sim``, every fault on) with the quick
    model through ccxt, paper trading, in a scratch store (issue 15)."""
    import subprocess
    import tempfile
    from pathlib import Path

    from workbench.live.live_view import live_view, open_session
    from workbench.train.handle import load_model

    tail = store.read_ohlcv(*ETH, store.last_ts(*ETH) - 1200 * 60_000)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Store(Path(tmp) / "live.duckdb")
        scratch.replace_series(*ETH, tail.head(tail.height - live - backfill))
        served = tail.tail(live + backfill + 100)  # 100 stored, then backfill, then live
        served.write_parquet(Path(tmp) / "served.parquet")
        sim = subprocess.Popen(
            [sys.executable, "-c", "from workbench.cli import main; main()", "exchange-sim",
             "--data", str(Path(tmp) / "served.parquet"), "--symbol", ETH[0], "--timeframe", ETH[1],
             "--port", "0", "--speed", "1200x", "--faults", "drop,duplicate,reorder,disconnect,429",
             "--start-index", str(100 + backfill)], stdout=subprocess.PIPE, text=True)
        try:
            url = sim.stdout.readline().split()[2]
            run = open_session(load_model(_STATE["run_id"], store.path), scratch, *ETH, "none",
                               source="exchange", url=url, max_candles=live + backfill,
                               backoff_s=0.1, poll_s=1.0)
            st = run.session.run()
            run.broker.close()
            view = live_view(run)
        finally:
            sim.terminate()
            sim.wait(10)
        src, paper = view["source"], view["paper"]
        same = scratch.read_ohlcv(*ETH).tail(live + backfill).equals(served.slice(100))
    print(f"   exchange-sim at {url}: candles={st['candles']} predictions={st['predictions']} "
          f"backfilled={src['backfilled']} reconnects={src['reconnects']} "
          f"rate_limited={src['rate_limited']} duplicates={src['duplicates']} "
          f"lag={src['lag_ms']} ms stored==served: {same}")
    print(f"   paper: position={paper['position']:g} unrealised={paper['unrealised_pnl']:+.2f} "
          f"equity={paper['equity']:.2f} fills={paper['fills']} ({st['candles_per_s']} "
          "candles/s)")


def backtest(store: Store, days: int = 3) -> None:
    """Backtest the quick model over the last ``days`` of ETH/USDT 1m (the visible range)."""
    from workbench.backtest.engine import BacktestConfig, run_backtest
    from workbench.backtest.stats import format_stats

    end = store.last_ts(*ETH)
    result = run_backtest(BacktestConfig(*ETH, start=end - days * 86_400_000, end=end,
                                         model=_STATE["run_id"]), store=store)
    _STATE["backtest"] = result.stats
    text = dict(format_stats(result.stats))
    print(f"   backtest {result.backtest_id}: " + ", ".join(
        f"{k} {text[k]}" for k in ("# Trades", "Win Rate [%]", "Return [%]", "Max. Drawdown [%]",
                                   "Sharpe Ratio", "Exposure Time [%]")))
    note = result.open_trades_note()
    if note:
        print(f"   ({note})")


def notebooks(store: Store) -> None:
    """Run the CI-profile notebook suite through papermill into reports/<date>/."""
    from workbench.ui.notebooks import run_suite

    result = run_suite(profile="ci", env={"WORKBENCH_DB": str(store.path)},
                       log=lambda line: print(f"   {line}", flush=True))
    _STATE["suite"] = result
    if not result.ok:
        failed = [r.name for r in result.results if not r.ok]
        raise SystemExit(f"notebooks failed: {failed}; see {result.index}")


def headline(store: Store) -> None:
    """Print where the reports are and the headline numbers each notebook recorded."""
    suite = _STATE["suite"]
    print(f"   reports index: {suite.index}")
    for r in suite.results:
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in r.records.items() if not isinstance(v, (dict, list)))
        print(f"   {r.name:18} {r.seconds:5.1f} s  {shown}")


STEPS: list[tuple[str, Callable[[Store], None]]] = [
    ("Ingest the shipped data", ingest),
    ("Overview chart with confirmed pivots", overview),
    ("Train the quick transformer (configs/transformer.yaml --quick)", train_quick),
    ("Live sessions in each training mode", live_modes),
    ("Live session against the local exchange (ccxt, faults on, paper trading)", live_exchange),
    ("Backtest the visible range (last 3 days)", backtest),
    ("Notebook suite through papermill (CI profile)", notebooks),
    ("Headline numbers", headline),
]


def main(argv: list[str] | None = None) -> int:
    """Run every demo step on the store of ``--db`` (default: ``$WORKBENCH_DB``, then the project
    database); runs are written beside that database. Returns the exit status."""
    from workbench.ui.kernel_startup import quiet_libraries

    quiet_libraries()  # before Lightning/TensorFlow load: their info lines and warnings stay out
    parser = argparse.ArgumentParser(prog="python -m workbench.demo")
    parser.add_argument("--db", default=None, help="DuckDB file of the demo")
    store = Store(parser.parse_args(argv).db)
    print(f"workbench demo on {store.path}")
    t0 = time.perf_counter()
    for title, fn in STEPS:
        _step(title, fn, store)
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
