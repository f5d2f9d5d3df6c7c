"""The papermill suite runner on small real notebooks: reports, records, failures, index, CLI."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.ui.nbfactory import make_notebook
from workbench.errors import NotFoundError, ParameterError
from workbench.ui import notebooks as nbrun

GOOD = ('n = 3  # how many items\nlabel = "x"  # a label\nscale = 1.5  # a factor\n'
        'flag = False  # a switch')
GOOD_BODY = ('from workbench.ui import record\nimport pathlib\n'
             'pathlib.Path("cwd_marker.txt").write_text("here")\n'
             'record("n_squared", n * n)\nrecord("label", label)\nrecord("flag", flag)\n'
             'import numpy as np\nrecord("mean", np.float64(scale) * 2)\nprint("done", n)')
BAD_BODY = 'from workbench.ui import record\nrecord("before", 1)'
BAD_FAIL = 'raise ValueError("deliberate failure in cell three")'


@pytest.fixture(scope="module")
def nb_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("nbs")
    make_notebook(d / "good.ipynb", GOOD, GOOD_BODY)
    make_notebook(d / "bad.ipynb", 'x = 1  # unused', BAD_BODY, BAD_FAIL, 'record("after", 2)')
    make_notebook(d / "02_train.ipynb", 'epochs = 1  # epochs',
                  'from workbench.ui import record\nrecord("run_id", "run-abc")')
    make_notebook(d / "04_backtest.ipynb", 'model = ""  # run id',
                  'from workbench.ui import record\nrecord("model_used", model)')
    return d


@pytest.fixture(scope="module")
def suite(nb_dir, tmp_path_factory):
    reports = tmp_path_factory.mktemp("reports")
    lines = []
    result = nbrun.run_suite(["good", "bad", "02_train", "04_backtest"],
                             overrides={"n": "7", "flag": "true"}, reports_root=reports,
                             notebooks_dir=nb_dir, date="2026-01-02", timeout=60, log=lines.append)
    return result, reports, lines


def test_successful_notebook_writes_ipynb_html_and_records(suite):
    result, reports, _ = suite
    good = result.results[0]
    assert good.ok and good.parameters == {"n": 7, "flag": True}
    assert good.records == {"n_squared": 49, "label": "x", "flag": True, "mean": 3.0}
    out = reports / "2026-01-02"
    doc = json.loads((out / "good.json").read_text())
    assert doc["records"]["n_squared"] == 49 and doc["status"] == "ok"
    html = (out / "good.html").read_text()
    assert "done 7" in html  # outputs kept
    assert "pathlib.Path" not in html  # inputs hidden
    assert (out / "cwd_marker.txt").read_text() == "here"  # kernel cwd is the report folder


def test_failing_notebook_is_reported_with_the_failing_cell(suite):
    result, reports, _ = suite
    bad = result.results[1]
    assert not result.ok and not bad.ok
    assert "ValueError" in bad.error and "deliberate failure" in bad.error
    assert bad.records == {"before": 1}  # values recorded before the failure survive
    html = (reports / "2026-01-02" / "bad.html").read_text()
    assert "papermill-error-cell" in html
    text = re.sub(r"<[^>]+>", "", html)
    stopped = text.split("encountered an exception here and stopped:", 1)[1]
    # the failing cell's source is shown where it stopped, before its traceback
    assert stopped.lstrip().startswith('raise ValueError("deliberate failure in cell three")')
    assert "deliberate failure in cell three" in html


def test_recorded_run_id_is_handed_to_later_notebooks(suite):
    result, _, _ = suite
    assert result.results[3].records["model_used"] == "run-abc"


def test_index_links_every_report_with_values(suite):
    result, reports, lines = suite
    index = (reports / "index.html").read_text()
    for name in ("good", "bad", "02_train", "04_backtest"):
        assert f"2026-01-02/{name}.html" in index
    assert "n_squared = 49" in index and "class='failed'" in index
    assert len(lines) == 4 and lines[1].startswith("failed")


def test_parameter_errors_name_the_problem(nb_dir):
    with pytest.raises(ParameterError, match="nope"):
        nbrun.resolve_parameters(["good"], "ci", {"nope": "1"}, nb_dir)
    with pytest.raises(ParameterError, match="expects int"):
        nbrun.resolve_parameters(["good"], "ci", {"n": "many"}, nb_dir)
    with pytest.raises(ParameterError, match="profile"):
        nbrun.resolve_parameters(["good"], "weekly", {}, nb_dir)
    with pytest.raises(NotFoundError, match="good"):
        nbrun.notebook_path("missing", nb_dir)


def test_cli_exit_status_and_json(nb_dir, tmp_path):
    env = dict(os.environ, WORKBENCH_DB=str(tmp_path / "wb.duckdb"))
    cmd = [sys.executable, "-c", "from workbench.cli import main; main()", "notebooks", "run", "--notebooks", str(nb_dir),
           "--reports", str(tmp_path / "r"), "--json"]
    ok = subprocess.run(cmd + ["good", "-p", "n", "2"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == "", ok.stderr  # quiet: no kernel log lines ("running over TCP ...")
    payload = json.loads(ok.stdout)
    assert payload["ok"] and payload["results"][0]["records"]["n_squared"] == 4
    bad = subprocess.run(cmd + ["bad"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and json.loads(bad.stdout)["ok"] is False
    unknown = subprocess.run(cmd + ["good", "-p", "zzz", "1"], capture_output=True, text=True,
                             env=env)
    assert unknown.returncode == 2 and "zzz" in unknown.stderr
