"""The shared action vocabulary: one realised-action rule, used by the store's SQL as well."""
import numpy as np
import polars as pl
import pytest

from workbench.actions import (ACTIONS, BUY, HOLD, HOLD_BAND, SELL, SIGNAL_OF_CLASS,
                               realised_action, realised_actions)
from workbench.data.store import LEDGER_SCHEMA, Store
from workbench.errors import ParameterError


def test_realised_actions_bounds_are_hold_and_scalar_form_agrees():
    moves = np.array([0.2, -0.2, HOLD_BAND, -HOLD_BAND, 0.051, -0.051, np.nan])
    got = realised_actions(moves)
    assert got.tolist() == [BUY, SELL, HOLD, HOLD, BUY, SELL, HOLD]
    assert [realised_action(m) for m in moves] == got.tolist()
    assert SIGNAL_OF_CLASS.tolist() == [{"BUY": 1, "SELL": -1, "HOLD": 0}[a] for a in ACTIONS]


def test_ledger_sql_scores_with_the_same_rule_and_band(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    moves = [0.3, -0.3, 0.04, 0.06, -0.06, 0.12]
    rows = [{c: None for c in LEDGER_SCHEMA} | {
        "inference_id": f"i{k}", "run_id": "r", "model_version": 1, "symbol": "X",
        "timeframe": "1h", "prediction_ts": k, "target_ts": k + 1, "data_range_start": 0,
        "data_range_end": k, "predicted_action": "BUY", "confidence": 0.5,
        "realised_move": m} for k, m in enumerate(moves)]
    store.append_ledger(pl.DataFrame(rows, schema=LEDGER_SCHEMA))
    for band in (HOLD_BAND, 0.1):
        hits = store.ledger_hit_rates("r", hold_band=band)["hits"].sum()
        assert hits == int((realised_actions(moves, band) == BUY).sum())


def test_annotation_check_rejects_an_unknown_action(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    with pytest.raises(ParameterError, match="not one of"):
        store.add_annotations("X", "1h", pl.DataFrame({"ts": [1], "action": ["SHORT"],
                                                      "source": ["manual"]}))
