"""``workbench live ... --json`` on a throw-away store with a real ETH slice, every mode."""
from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.live.modes import TrainingMode

from ._live_helpers import quick_run

SYMBOL, TF = "ETH/USDT", "1m"


@pytest.fixture
def cli_env(eth_store):
    run_id = quick_run(eth_store, max_windows=200)
    ts = eth_store.read_ohlcv(SYMBOL, TF)["ts"].to_numpy()
    return run_id, eth_store, ts


def _live(store, run_id, ts, mode, *extra):
    args = ["--db", str(store.path), "live", "--model", run_id, "--symbol", SYMBOL,
            "--timeframe", TF, "--mode", mode, "--start", str(int(ts[600])),
            "--end", str(int(ts[720])), "--json", *extra]
    return CliRunner().invoke(app, args)


def test_every_mode_runs_from_the_cli_and_reports_as_json(cli_env, tmp_path):
    run_id, store, ts = cli_env
    labels = tmp_path / "labels.csv"
    pl.DataFrame({"ts": [int(ts[650]), int(ts[700])], "action": ["BUY", "sell"]}).write_csv(labels)
    out = {}
    for mode in TrainingMode:
        extra = ["--manual-labels", str(labels)] if mode is TrainingMode.MANUAL else []
        result = _live(store, run_id, ts, mode.value, *extra)
        assert result.exit_code == 0, result.output
        out[mode] = json.loads(result.stdout)
    for mode, payload in out.items():
        assert payload["mode"] == mode.value and payload["run_id"] == run_id
        assert payload["candles"] == payload["predictions"] == 121
        assert payload["errors"] == 0 and payload["state"] == "finished"
        assert sum(payload["signals"].values()) == 121
        assert {"equity", "return_pct", "fills"} <= payload["pnl"].keys()
        assert {"lock_waits", "lock_wait_s"} <= payload.keys()
    assert out[TrainingMode.NONE]["training_steps"] == 0
    assert out[TrainingMode.NONE]["model_version"] == 0
    assert out[TrainingMode.EVERY_CANDLE]["per_candle"] == 120
    assert out[TrainingMode.PIVOTS_ONLY]["pivot"] == out[TrainingMode.PIVOTS_ONLY][
        "training_steps"] > 5
    assert out[TrainingMode.MANUAL]["manual_step"] == 2
    ann = store.read_annotations(SYMBOL, TF, sources=["manual"])
    assert ann.select("ts", "action").rows() == [(int(ts[650]), "BUY"), (int(ts[700]), "SELL")]


def test_cli_errors_are_one_clear_line(cli_env, tmp_path):
    run_id, store, ts = cli_env
    result = _live(store, run_id, ts, "sometimes")
    assert result.exit_code == 2 and "training mode 'sometimes' is not known" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,action\n1755513000000,LONG\n")  # a real time: only the action is wrong
    result = _live(store, run_id, ts, TrainingMode.MANUAL.value, "--manual-labels", str(bad))
    assert result.exit_code == 2
    assert "bad.csv" in result.output and "row 2" in result.output and "LONG" in result.output
    result = _live(store, run_id, ts, TrainingMode.NONE.value, "--manual-labels", str(bad))
    assert result.exit_code == 2 and "--manual-labels needs --mode manual" in result.output


def test_manual_labels_accept_epoch_ms_and_iso_with_a_zone(tmp_path):
    from workbench.cli.live import read_manual_labels
    from workbench.errors import DataValidationError

    iso, ms = tmp_path / "iso.csv", tmp_path / "ms.csv"
    iso.write_text("ts,action\n2025-08-18T10:30:00Z,buy\n2025-08-18T10:31:00+00:00,SELL\n")
    ms.write_text("ts,action\n1755513000000,BUY\n1755513060000,sell\n")
    expected = {1755513000000: "BUY", 1755513060000: "SELL"}
    assert read_manual_labels(iso) == expected and read_manual_labels(ms) == expected
    naive = tmp_path / "naive.csv"
    naive.write_text("ts,action\n2025-08-18T10:30:00Z,BUY\n2025-08-18T10:31:00,SELL\n")
    with pytest.raises(DataValidationError, match=r"row 3.*no time zone.*ts_format"):
        read_manual_labels(naive)
