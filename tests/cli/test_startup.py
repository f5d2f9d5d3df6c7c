"""Commands that only read the store or the runs folder start without torch or TensorFlow.

Importing Lightning takes about 7 s on this machine; ``workbench runs list`` took 11 s when it
imported the training engine to reach ``list_runs``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "lightning", "tensorflow")
CODE = """
import sys
from workbench.cli import main
try:
    main()
except SystemExit:
    pass
print("LOADED=" + ",".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["runs", "list", "--json"], ["runs", "show", "no-such-run"],
                                  ["data", "list", "--json"], ["ledger", "summary", "--json"],
                                  ["--help"]], ids=" ".join)
def test_read_only_commands_load_no_deep_learning_framework(args, tmp_path):
    env = {**os.environ, "WORKBENCH_DB": str(tmp_path / "wb.duckdb"),
           "WORKBENCH_RUNS": str(tmp_path / "runs")}
    out = subprocess.run([sys.executable, "-c", CODE.format(heavy=HEAVY), *args],
                         capture_output=True, text=True, env=env, timeout=120)
    loaded = [line for line in out.stderr.splitlines() if line.startswith("LOADED=")]
    assert loaded == ["LOADED="], out.stderr[-2000:]
    if args[-1] == "--json" and args[0] == "runs":
        assert json.loads(out.stdout) == []
