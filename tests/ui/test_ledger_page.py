"""The ledger page stays readable after 300 model versions: per run/session aggregates, at most
ten confidence buckets, one line per session, integer counts (no decimal columns)."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.errors import ParameterError
from workbench.live import ledger_report as lr
from workbench.live.ledger import LEDGER_SCHEMA
from workbench.ui import ledger_page


def _ledger(eth_slice, sessions: int, versions_per_session: int) -> pl.DataFrame:
    """Ledger rows on real ETH moves: each session publishes a new model version per frame."""
    close = eth_slice["close"].to_numpy()
    n = sessions * versions_per_session
    move = 100 * (close[1:n + 1] / close[:n] - 1)  # realised move of the next candle, percent
    rng = np.random.default_rng(0)
    actions = np.array(["BUY", "SELL", "HOLD"])[rng.integers(0, 3, n)]
    ts = eth_slice["ts"].to_numpy()[:n]
    session = np.repeat([f"sess-{i:02d}" for i in range(sessions)], versions_per_session)
    return pl.DataFrame({
        "inference_id": [f"f{i}" for i in range(n)], "session_id": session,
        "run_id": np.where(np.arange(n) < n // 2, "run-a", "run-b"),
        "model_version": np.arange(n), "symbol": "ETH/USDT", "timeframe": "1m",
        "prediction_ts": ts, "target_ts": ts + 60_000, "data_range_start": ts - 60_000 * 31,
        "data_range_end": ts, "predicted_action": actions,
        "confidence": rng.uniform(0.34, 1.0, n), "pred_open": 0.0, "pred_high": 0.1,
        "pred_low": -0.1, "pred_close": rng.normal(0, 0.05, n), "actual_open": 0.0,
        "actual_high": np.abs(move), "actual_low": -np.abs(move), "actual_close": move,
        "realised_move": move, "pivot_type": None, "pivot_confirmed_ts": None,
    }, schema_overrides=LEDGER_SCHEMA).select(list(LEDGER_SCHEMA))


def test_300_versions_aggregate_per_session_and_run_with_integer_counts(tmp_store, eth_slice):
    tmp_store.append_ledger(_ledger(eth_slice, 3, 100))
    view = ledger_page.ledger_view(tmp_store)
    assert view.rows.height == 300 and view.group == "session_id"
    assert view.per_session["n"].to_list() == [100, 100, 100]
    assert view.per_session["versions"].to_list() == [100, 100, 100]
    assert view.per_run["run_id"].to_list() == ["run-a", "run-b"]
    for frame in (view.per_run, view.per_session, view.per_action, view.reliability):
        assert not any(isinstance(t, pl.Decimal) for t in frame.dtypes)
    hits = int(view.rows["hit"].sum())
    assert view.per_session["hits"].sum() == view.per_action["hits"].sum() == hits
    assert view.reliability.group_by("session_id").len()["len"].max() <= 10
    table = ledger_page.summary_table(view.per_session, "session_id")
    assert table.cell(0, "model versions") == "v0–v99" and table.cell(0, "hit rate").endswith("%")


def test_figures_draw_one_line_per_session_not_per_version(tmp_store, eth_slice):
    tmp_store.append_ledger(_ledger(eth_slice, 12, 25))
    view = ledger_page.ledger_view(tmp_store)
    rel = ledger_page.reliability_figure(view)
    assert len(rel.data) == 1 + 10 and "latest 10 of 12" in rel.layout.title.text
    assert rel.data[-1].name == "sess-11"
    assert all(len(t.x) <= 10 for t in rel.data[1:])
    hit = ledger_page.hit_rate_figure(view)
    assert len(hit.data) == 10 and all(0 <= y <= 1 for t in hit.data for y in t.y)


def test_reliability_refuses_more_than_ten_buckets(eth_slice):
    rows = lr.scored(_ledger(eth_slice, 1, 50))
    with pytest.raises(ParameterError, match="1..10"):
        lr.reliability(rows, "session_id", buckets=20)
    five = lr.reliability(rows, "session_id", buckets=5)
    assert five["bucket"].max() <= 4 and five["n"].sum() == 50
