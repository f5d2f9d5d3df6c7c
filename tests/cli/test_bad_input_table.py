"""Every command, fed bad input, exits 2 with one ``error:`` line on stderr and no traceback.

The table lists cases per command path; the command paths come from the typer app itself, so a
new command without cases fails :func:`test_every_command_has_bad_input_cases`. Cases run
in-process through :func:`workbench.cli.main` (what the console script runs); two run in a real
subprocess to check what a terminal sees, Lightning and all.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from workbench.cli import app, main

ETH = ["--symbol", "ETH/USDT", "--timeframe", "1m"]
NO_RUN = "20990101-000000-transformer-000000"

#: command path -> bad argument lists ({missing} is a path that does not exist)
CASES: dict[str, list[list[str]]] = {
    "data ingest": [["{missing}.csv", *ETH], ["{missing}.csv"], ["--bogus", "x", *ETH],
                    ["{csv}", "--symbol", "ETH/USDT", "--timeframe", "7q"]],
    "data ingest-shipped": [["--bogus"], ["extra"]],
    "data info": [["--bogus"], ["extra"]],
    "data resample": [["--symbol", "ETH/USDT", "--to", "7x"],
                      ["--symbol", "NOPE/USDT", "--to", "5m"], ["--to"]],
    "data delete": [[*ETH], [*ETH, "--start", "tomorrow", "--yes"],
                    [*ETH, "--start", "2026-01-02", "--end", "2026-01-01", "--yes"],
                    ["--symbol", "NOPE/USDT", "--timeframe", "1m", "--yes"], ["--bogus"]],
    "data pivots": [[*ETH, "--levels", "abc"], [*ETH, "--levels", "0"],
                    [*ETH, "--strength", "-1"], [*ETH, "--until", "tomorrow"],
                    ["--symbol", "NOPE/USDT", "--timeframe", "1m"]],
    "train": [["-c", "{missing}.yaml"], ["--set", "training.num_epochz=3"],
              ["--quick", "--set", "training.learning_rate=nan"],
              ["--quick", "--set", "training.learning_rate=inf"],
              ["--quick", "--set", "training.weight_decay=inf"],
              ["--quick", "--set", "training.grad_clip=nan"],
              ["--quick", "--set", "data.rule_threshold=nan"],
              ["--set", "training.batch_size=abc"], ["--set", "training"],
              ["--set", "training.devices=0"], ["--set", "training.strategy=warp"],
              ["--set", "callbacks.checkpoint.monitor=val_lss"],
              ["--resume", "../etc"], ["--resume", NO_RUN]],
    "runs list": [["--bogus"]],
    "runs show": [[NO_RUN], ["../x"], []],
    "export onnx": [[NO_RUN], [], ["a/b"]],
    "price-model train": [["ETH/USDT", "--timeframe", "1m", "--start-date", "2025-06-01",
                           "--end-date", "2025-06-02", "--epochs", "abc"],
                          ["ETH/USDT", "--timeframe", "1m"], ["--bogus"]],
    "ledger summary": [["--hold-band", "-1"], ["--hold-band", "nan"], ["--hold-band", "inf"],
                       ["--hold-band", "x"]],
    "live": [["--model", NO_RUN, *ETH], ["--model", NO_RUN, *ETH, "--mode", "sometimes"],
             ["--model", NO_RUN, *ETH, "--mode", "manual", "--manual-labels",
              "{missing}.csv"], [*ETH]],
    "backtest": [[*ETH, "--signals", "{missing}.parquet"], [*ETH, "--fee", "nan"],
                 [*ETH, "--signals", "{csv}", "--start", "yesterday"], [*ETH],
                 [*ETH, "--model", NO_RUN], [*ETH, "--cash", "abc"]],
    "lookahead-check": [["--model", NO_RUN, *ETH], ["--model", NO_RUN, *ETH, "--samples", "x"],
                        [*ETH]],
    "notebooks run": [["no_such_notebook"], ["--timeout", "abc"], ["-p"]],
    "dashboard": [["--port", "abc"], ["--bogus"]],
    "runs pin": [[NO_RUN], ["../x"], []],
    "evaluate": [["-c", "{missing}.yaml"], ["--quick", "--folds", "0"],
                 ["--quick", "--folds", "abc"], ["--quick", "--scheme", "sideways"],
                 ["--quick", "--set", "training.learning_rate=nan"], ["--quick", "--purge", "1"]],
    "sweep": [["--quick", "--trials", "2"], ["--quick", "--space", "{missing}.yaml", "--trials", "2"],
              ["--quick", "--space", "{csv}", "--trials", "0"],
              ["--quick", "--space", "configs/space.example.yaml", "--trials", "2",
               "--objective", "luck"],
              ["--quick", "--space", "configs/space.example.yaml", "--trials", "2",
               "--workers", "0"]],
    "exchange-sim": [["--data", "{missing}.parquet", *ETH], ["--data", "{csv}", *ETH,
                                                              "--faults", "meteor"],
                     ["--data", "{csv}", *ETH, "--speed", "fast"], ["--symbol", "ETH/USDT"]],
}


def _command_paths(group=None, prefix="") -> list[str]:
    group = group or typer.main.get_command(app)
    out = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        sub = getattr(command, "commands", None)
        out += _command_paths(command, f"{path} ") if sub is not None else [path]
    return out


def test_every_command_has_bad_input_cases():
    assert sorted(_command_paths()) == sorted(CASES), "add bad-input cases for new commands"


@pytest.fixture
def argv_for(eth_store, tmp_path):
    csv = tmp_path / "candles.csv"
    csv.write_text("ts,open,high,low,close,volume\n0,1,1,1,1,1\n")
    env = {"missing": str(tmp_path / "does-not-exist"), "csv": str(csv)}

    def build(path: str, args: list[str]) -> list[str]:
        return ["--db", str(eth_store.path), *path.split(), *(a.format(**env) for a in args)]
    return build


def _cases():
    return [(path, args) for path, cases in CASES.items() for args in cases]


@pytest.mark.parametrize("path, args", _cases(), ids=[f"{p}:{' '.join(a)}" for p, a in _cases()])
def test_bad_input_exits_2_with_one_line_and_no_traceback(path, args, argv_for, eth_store,
                                                         capsys):
    before = eth_store.series().rows()
    with pytest.raises(SystemExit) as done:
        main(argv_for(path, args))
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert done.value.code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and out == ""
    assert eth_store.series().rows() == before  # a refused command changes nothing stored


@pytest.mark.parametrize("args", [
    ["train", "-c", "configs/transformer.yaml", "--quick", "--set", "training.grad_clip=nan"],
    ["ledger", "summary", "--hold-band", "-1", "--json"],
])
def test_a_terminal_sees_one_line_too(args, eth_store):
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "--db", str(eth_store.path),
                           *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
