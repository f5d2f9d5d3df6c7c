"""``workbench data ...`` as a user runs it: ingest, info, resample, pivots, --json, errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.ingest import iso_utc

BAD = Path(__file__).with_name("bad_inputs")
runner = CliRunner()


def wb(db, *args):
    return runner.invoke(app, ["--db", str(db), "data", *args])


@pytest.fixture
def csv_file(eth_slice, tmp_path) -> Path:
    path = tmp_path / "eth.csv"
    eth_slice.head(600).write_csv(path)
    return path


@pytest.mark.parametrize("cmd", [[], ["ingest"], ["info"], ["resample"], ["pivots"],
                                 ["ingest-shipped"], ["delete"]])
def test_every_command_has_help(cmd):
    result = runner.invoke(app, ["data", *cmd, "--help"])
    assert result.exit_code == 0 and "Usage" in result.stdout


def test_ingest_then_cached_with_json(csv_file, tmp_path):
    db = tmp_path / "x.duckdb"
    first = wb(db, "ingest", str(csv_file), "--symbol", "ETH/USDT", "--timeframe", "1m", "--json")
    assert first.exit_code == 0, first.output
    d = json.loads(first.stdout)
    assert (d["status"], d["rows_added"], d["gaps"]) == ("ingested", 600, 0)
    again = wb(db, "ingest", str(csv_file), "--symbol", "ETH/USDT", "--timeframe", "1m", "--json")
    assert json.loads(again.stdout)["status"] == "cached"
    forced = wb(db, "ingest", str(csv_file), "--symbol", "ETH/USDT", "--timeframe", "1m",
                "--force-refresh")
    assert forced.exit_code == 0 and "ingested" in forced.stdout and "rows added 0" in forced.stdout


def test_bad_file_prints_one_line_and_exits_2(tmp_path):
    result = wb(tmp_path / "x.duckdb", "ingest", str(BAD / "negative_volume.csv"),
                "--symbol", "ETH/USDT", "--timeframe", "1m")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "row 10" in lines[0] and "negative_volume" in lines[0]
    assert "Traceback" not in result.output


def test_info_lists_ranges_counts_and_gaps(eth_slice, tmp_path):
    db = tmp_path / "x.duckdb"
    holed = eth_slice.head(300).filter(pl.col("ts") != eth_slice["ts"][100])
    holed.write_parquet(tmp_path / "h.parquet")
    wb(db, "ingest", str(tmp_path / "h.parquet"), "--symbol", "ETH/USDT", "--timeframe", "1m")
    rows = json.loads(wb(db, "info", "--json").stdout)
    assert len(rows) == 1
    r = rows[0]
    assert (r["symbol"], r["timeframe"], r["rows"], r["gaps"], r["missing_candles"]) == \
        ("ETH/USDT", "1m", 299, 1, 1)
    assert r["first_ts_iso"].endswith("Z") and r["gap_ranges"] == [[eth_slice["ts"][100]] * 2]
    text = wb(db, "info").stdout
    assert "ETH/USDT" in text and "299" in text


def test_resample_stores_a_new_series(csv_file, tmp_path):
    db = tmp_path / "x.duckdb"
    wb(db, "ingest", str(csv_file), "--symbol", "ETH/USDT", "--timeframe", "1m")
    result = wb(db, "resample", "--symbol", "ETH/USDT", "--from", "1m", "--to", "5m", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 120
    tfs = {r["timeframe"]: r["rows"] for r in json.loads(wb(db, "info", "--json").stdout)}
    assert tfs == {"1m": 600, "5m": 120}
    bad = wb(db, "resample", "--symbol", "ETH/USDT", "--to", "2h")
    assert bad.exit_code == 2 and "targets" in bad.stderr


def test_pivots_until_shows_only_confirmed(csv_file, tmp_path):
    db = tmp_path / "x.duckdb"
    wb(db, "ingest", str(csv_file), "--symbol", "ETH/USDT", "--timeframe", "1m")
    every = json.loads(wb(db, "pivots", "--symbol", "ETH/USDT", "--timeframe", "1m", "--json").stdout)
    assert every and {"ts", "confirmed_ts", "price", "pivot_type", "level"} <= set(every[0])
    cut = sorted(p["confirmed_ts"] for p in every)[len(every) // 2]
    for until in (str(cut), iso_utc(cut)):  # epoch ms and ISO name the same instant
        some = json.loads(wb(db, "pivots", "--symbol", "ETH/USDT", "--timeframe", "1m",
                             "--until", until, "--json").stdout)
        assert some == [p for p in every if p["confirmed_ts"] <= cut]
    day = wb(db, "pivots", "--symbol", "ETH/USDT", "--timeframe", "1m", "--until", "2000-01-01",
             "--json")
    assert json.loads(day.stdout) == []
    missing = wb(db, "pivots", "--symbol", "NOPE", "--timeframe", "1m")
    assert missing.exit_code == 2 and "NOPE" in missing.stderr


def test_console_script_end_to_end(csv_file, tmp_path):
    exe = Path(sys.executable).with_name("workbench")
    db = tmp_path / "x.duckdb"
    out = subprocess.run([str(exe), "--db", str(db), "data", "ingest", str(csv_file), "--symbol",
                          "ETH/USDT", "--timeframe", "1m", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows_added"] == 600
    bad = subprocess.run([str(exe), "--db", str(db), "data", "ingest", str(BAD / "empty.csv"),
                          "--symbol", "ETH/USDT", "--timeframe", "1m"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "empty" in bad.stderr
