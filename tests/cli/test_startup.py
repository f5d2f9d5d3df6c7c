"""Commands that only read the store or the runs folder start without torch or TensorFlow.

Importing Lightning takes about 7 s on this machine; ``workbench runs list`` took 11 s when it
imported the training engine to reach ``list_runs``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("torch", "lightning", "tensorflow")
COMMANDS = [["runs", "list", "--json"], ["runs", "show", "no-such-run"], ["data", "list", "--json"],
            ["ledger", "summary", "--json"], ["--help"]]
# one process runs the commands in turn and says, after each, which heavy modules it loaded
CODE = """
import json, sys
from contextlib import redirect_stdout
from io import StringIO
from workbench.cli import main
before = set()
for args in json.loads(sys.argv[1]):
    sys.argv = ["workbench", *args]
    out = StringIO()
    with redirect_stdout(out):
        try:
            main()
        except SystemExit:
            pass
    loaded = [m for m in {heavy!r} if m in sys.modules and m not in before]
    before.update(loaded)
    print(json.dumps({{"args": args, "loaded": loaded, "stdout": out.getvalue()}}))
"""


def test_read_only_commands_load_no_deep_learning_framework(tmp_path):
    env = {**os.environ, "WORKBENCH_DB": str(tmp_path / "wb.duckdb"),
           "WORKBENCH_RUNS": str(tmp_path / "runs")}
    out = subprocess.run([sys.executable, "-c", CODE.format(heavy=HEAVY), json.dumps(COMMANDS)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [r["args"] for r in results] == COMMANDS
    assert {" ".join(r["args"]): r["loaded"] for r in results} == {
        " ".join(args): [] for args in COMMANDS}
    assert json.loads(results[0]["stdout"]) == []  # runs list --json on an empty runs folder
