"""``--json`` prints one strict JSON document: no NaN/inf (they become null), integer counts."""
from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from tests.live.test_ledger import _known_rows
from workbench.cli import _common, main


def _strict(text: str):
    """Parse JSON the way strict parsers do: a bare NaN/Infinity is an error."""
    def refuse(name):
        raise AssertionError(f"bare {name} in --json output")
    return json.loads(text, parse_constant=refuse)


def _run(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    return done.value.code, out, err


def test_backtest_json_without_a_closed_trade_has_null_not_nan(eth_store, eth_slice, tmp_path,
                                                               capsys):
    """Was: `backtest --json` wrote a bare NaN (the win rate of zero closed trades)."""
    flat = tmp_path / "flat.parquet"
    pl.DataFrame({"ts": eth_slice["ts"], "signal": np.zeros(eth_slice.height, np.int8)}) \
        .write_parquet(flat)
    code, out, err = _run(["--db", str(eth_store.path), "backtest", "--signals", str(flat),
                           "--symbol", "ETH/USDT", "--timeframe", "1m", "--json"], capsys)
    assert code == 0, err
    summary = _strict(out)
    assert summary["stats"]["# Trades"] == 0 and summary["stats"]["Win Rate [%]"] is None


def test_ledger_summary_json_counts_are_integers(tmp_store, capsys):
    """Was: `ledger summary --json` gave `hits` as a string (DuckDB's 128-bit Decimal sum)."""
    tmp_store.append_ledger(_known_rows())
    code, out, err = _run(["--db", str(tmp_store.path), "ledger", "summary", "--json"], capsys)
    assert code == 0, err
    payload = _strict(out)
    for table in ("hit_rate", "calibration", "candle_error"):
        for row in payload[table]:
            assert isinstance(row["n"], int) and isinstance(row["model_version"], int), row
    assert all(isinstance(r["hits"], int) for r in payload["hit_rate"])
    assert sum(r["hits"] for r in payload["hit_rate"]) == 4


def test_emit_replaces_every_non_finite_float_with_null(capsys):
    payload = {"a": float("nan"), "b": [1.5, float("inf"), np.float32("nan")],
               "c": {"d": np.float64("-inf"), "e": np.arange(3)}, "f": (2, np.int64(7))}
    _common.emit(payload, True, print)
    assert _strict(capsys.readouterr().out) == {"a": None, "b": [1.5, None, None],
                                                "c": {"d": None, "e": [0, 1, 2]}, "f": [2, 7]}
    assert math.isnan(payload["a"])  # the caller's data is left as it was
