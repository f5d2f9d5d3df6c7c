"""The Voila dashboard: settings, the explicit notebook list, and a real server that refuses code."""
from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.ui.nbfactory import make_notebook
from tests.ui.voila_server import running_voila
from workbench.errors import NotFoundError
from workbench.ui import dashboard

WIDGET_CELL = ('import ipywidgets as w\nSOURCE_MARKER_7731 = 1\n'
               'w.Button(description="press-me")')
FAIL_CELL = 'raise RuntimeError("secret_error_text_4412")'


def test_voila_argv_carries_the_dashboard_settings(tmp_path):
    argv = " ".join(dashboard.voila_argv(tmp_path, 9999, timeout=42))
    for setting in ("--Voila.ip=127.0.0.1", "--port=9999",
                    "--VoilaConfiguration.strip_sources=True",
                    "--VoilaConfiguration.show_tracebacks=False", "--VoilaExecutor.timeout=42",
                    "--MappingKernelManager.cull_idle_timeout=", "--MappingKernelManager.cull_interval=",
                    "--MappingKernelManager.cull_connected=False",
                    "--VoilaConfiguration.preheat_kernel=True", "--VoilaConfiguration.template=workbench",
                    "--VoilaConfiguration.multi_kernel_manager_class="
                    "workbench.ui.voila_app.HandOutKernelManager",
                    "--KernelManager.transport=ipc",
                    "--VoilaConfiguration.extension_denylist=jupyterlab-plotly"):
        assert setting in argv
    # a kernel whose tab is gone is culled within 2 minutes
    assert dashboard.CULL_IDLE_TIMEOUT + dashboard.CULL_INTERVAL <= 120


def test_serving_dir_holds_only_the_listed_notebooks(tmp_path):
    src = tmp_path / "nbs"
    make_notebook(src / "a.ipynb", "x = 1  # x")
    make_notebook(src / "b.ipynb", "x = 1  # x")
    (src / "secret.txt").write_text("no")
    served = dashboard.prepare_serving_dir(["a"], tmp_path / "serve", notebooks_dir=src)
    assert sorted(p.name for p in served.iterdir()) == ["a.ipynb"]
    everything = dashboard.prepare_serving_dir(None, tmp_path / "all", notebooks_dir=src)
    assert sorted(p.name for p in everything.iterdir()) == ["a.ipynb", "b.ipynb"]
    with pytest.raises(NotFoundError):
        dashboard.prepare_serving_dir(["zzz"], tmp_path / "serve2", notebooks_dir=src)


def test_serving_dir_injects_the_db_parameter_into_notebooks_that_declare_it(tmp_path):
    import nbformat

    from workbench.ui.notebooks import NOTEBOOKS_DIR

    db = str(tmp_path / "other.duckdb")
    served = dashboard.prepare_serving_dir(["00_control_panel"], tmp_path / "serve",
                                           notebooks_dir=NOTEBOOKS_DIR, db=db)
    nb = nbformat.read(served / "00_control_panel.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in dict(c.metadata).get("tags", ())]
    assert len(injected) == 1 and f"db = {db!r}" in injected[0].source.replace('"', "'")


def _msg(msg_type: str, content: dict, session: str) -> str:
    return json.dumps({
        "header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": session,
                   "username": "viewer", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "content": content, "channel": "shell",
        "buffers": []})


def _replies(ws, seconds: float) -> list[dict]:
    """Collect every message arriving on the websocket within ``seconds``."""
    import websocket

    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        ws.settimeout(max(0.05, end - time.monotonic()))
        try:
            out.append(json.loads(ws.recv()))
        except websocket.WebSocketTimeoutException:
            break
    return out


@pytest.fixture(scope="module")
def voila_base(tmp_path_factory):
    d = tmp_path_factory.mktemp("dash")
    make_notebook(d / "nbs" / "panel.ipynb", 'title = "t"  # a title', WIDGET_CELL)
    make_notebook(d / "nbs" / "broken.ipynb", 'title = "t"  # a title', FAIL_CELL)
    make_notebook(d / "nbs" / "hidden.ipynb", 'title = "t"  # a title')
    with running_voila(["panel", "broken"], d / "nbs", d / "voila.log") as base:
        yield base, d


def test_page_shows_widgets_without_sources(voila_base):
    base, _ = voila_base
    page = urllib.request.urlopen(base + "/voila/render/panel.ipynb", timeout=120).read().decode()
    assert "application/vnd.jupyter.widget-view+json" in page  # the button is rendered
    assert "SOURCE_MARKER_7731" not in page  # sources stripped
    with pytest.raises(urllib.error.HTTPError) as err:  # not on the explicit list
        urllib.request.urlopen(base + "/voila/render/hidden.ipynb", timeout=60)
    assert err.value.code == 404


def test_tracebacks_are_off(voila_base):
    base, _ = voila_base
    page = urllib.request.urlopen(base + "/voila/render/broken.ipynb", timeout=120).read().decode()
    assert "secret_error_text_4412" not in page


def test_execute_request_over_the_kernel_websocket_is_refused(voila_base):
    import websocket

    base, d = voila_base
    page = urllib.request.urlopen(base + "/voila/render/panel.ipynb", timeout=120).read().decode()
    kernel_id = re.search(r'"kernelId":\s*"([0-9a-f-]{36})"', page).group(1)
    session = uuid.uuid4().hex
    ws = websocket.create_connection(
        f"{base.replace('http', 'ws')}/api/kernels/{kernel_id}/channels?session_id={session}",
        timeout=30)
    try:
        marker = d / "executed.txt"
        code = f"open({str(marker)!r}, 'w').write('ran')"
        ws.send(_msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                          "user_expressions": {}, "allow_stdin": False,
                                          "stop_on_error": True}, session))
        refused = _replies(ws, 6.0)
        # control: the same socket answers an allowed message type, so the silence is a refusal
        ws.send(_msg("kernel_info_request", {}, session))
        allowed = _replies(ws, 15.0)
    finally:
        ws.close()
    assert not [m for m in refused if m.get("msg_type") in ("execute_reply", "execute_input",
                                                              "stream", "error")]
    assert any(m.get("msg_type") == "kernel_info_reply" for m in allowed)
    assert not marker.exists()


def test_workbench_dashboard_command_serves_and_stops_with_its_server(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.ui.voila_server import free_port, wait_http

    port = free_port()
    env = dict(os.environ, WORKBENCH_DB=str(tmp_path / "wb.duckdb"))
    proc = subprocess.Popen([sys.executable, "-c", "from workbench.cli import main; main()",
                             "dashboard", "--port", str(port)], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc)
        for outside in ("README.md", "pyproject.toml", "workbench/paths.py"):  # notebooks only
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/files/{outside}",
                                       timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the Voila child went down with the command
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            except OSError:
                break
            time.sleep(0.3)
        else:
            pytest.fail("voila still answers after `workbench dashboard` was stopped")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


# -- hardening against a real `workbench dashboard` (issue 11 point 5) ---------------------------

PROXY_HOST = "dash.example.org"


@pytest.fixture(scope="module")
def cli_dashboard(tmp_path_factory):
    """A real `workbench dashboard --allow-host dash.example.org` on an empty store."""
    import os
    import signal
    import subprocess
    import sys

    from tests.ui.voila_server import free_port, wait_http

    d = tmp_path_factory.mktemp("cli-dash")
    port = free_port()
    env = dict(os.environ, WORKBENCH_DB=str(d / "wb.duckdb"), WORKBENCH_RUNS=str(d / "runs"))
    log = open(d / "dashboard.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", "from workbench.cli import main; main()",
                             "dashboard", "--port", str(port), "--allow-host", PROXY_HOST],
                            env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/", proc)
        yield base, port, d / "dashboard.log"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _status(url: str, **headers) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=120):
            return 200
    except urllib.error.HTTPError as err:
        return err.code


def test_the_dashboard_log_holds_no_warning_once_its_kernels_are_up(cli_dashboard):
    """What `make dashboard` prints: no "running over TCP without encryption" per kernel (they
    use IPC), no "Notebook ... is not trusted" per page (the copies are signed), no deprecated
    option syntax."""
    base, _, log = cli_dashboard
    deadline = time.monotonic() + 240
    while "Kernel pool of 07_research.ipynb is filled" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(1)
    _status(base + "/voila/render/06_ledger.ipynb")  # one page, with its kernel hand-out
    text = log.read_text()
    assert "Kernel started" in text
    noisy = [line for line in text.splitlines()
             if any(w in line for w in ("WARNING", "Warning", "TCP", "Traceback"))]
    assert not noisy, noisy


def test_landing_page_lists_every_notebook_with_title_and_description(cli_dashboard):
    from workbench.ui.voila_app import landing_entries
    from workbench.paths import NOTEBOOKS_DIR

    base, _, _ = cli_dashboard
    page = urllib.request.urlopen(base + "/", timeout=60).read().decode()
    entries = landing_entries(NOTEBOOKS_DIR)
    assert len(entries) >= 7
    for entry in entries:
        assert f"/voila/render/{entry['file']}" in page
        assert entry["title"] in page and entry["description"]
        assert entry["description"].replace("'", "&#x27;") in page
    assert "https://" not in page


def test_forged_host_is_refused_and_allowed_host_served(cli_dashboard):
    base, port, _ = cli_dashboard
    assert _status(base + "/") == 200
    for forged in ("evil.com", f"evil.com:{port}", "127.0.0.1.evil.com", "localhost.evil.com"):
        assert _status(base + "/", Host=forged) == 403, forged
        assert _status(base + "/voila/render/06_ledger.ipynb", Host=forged) == 403, forged
        assert _status(base + "/voila/static/voila.js", Host=forged) == 403, forged
    assert _status(base + "/", Host=f"localhost:{port}") == 200
    assert _status(base + "/", Host=PROXY_HOST) == 200  # --allow-host
    assert _status(base + "/", Host=f"127.0.0.1:{port}", Origin="http://evil.com") == 403


def _page_kernel(base: str, name: str) -> str:
    page = urllib.request.urlopen(f"{base}/voila/render/{name}", timeout=300).read().decode()
    return re.search(r'"kernelId":\s*"([0-9a-f-]{36})"', page).group(1)


def test_websocket_with_a_foreign_origin_is_refused(cli_dashboard):
    import websocket

    base, port, _ = cli_dashboard
    kernel_id = _page_kernel(base, "06_ledger.ipynb")
    url = f"ws://127.0.0.1:{port}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(url, origin="http://evil.com", timeout=30)
    assert err.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException):  # DNS rebinding: both forged
        websocket.create_connection(url, origin="http://evil.com", host="evil.com", timeout=30)
    ws = websocket.create_connection(url, origin=f"http://127.0.0.1:{port}", timeout=30)
    ws.close()  # control: the served origin connects


def test_comm_open_for_an_unknown_module_sends_no_traceback(cli_dashboard):
    import websocket

    base, port, _ = cli_dashboard
    kernel_id = _page_kernel(base, "06_ledger.ipynb")
    session = uuid.uuid4().hex
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/api/kernels/{kernel_id}/channels?session_id={session}",
        origin=f"http://127.0.0.1:{port}", timeout=30)
    try:
        state = {"_model_module": "evil-module-4711", "_model_module_version": "9.9.9",
                 "_model_name": "EvilModel", "_view_module": "evil-module-4711",
                 "_view_module_version": "9.9.9", "_view_name": "EvilView"}
        ws.send(_msg("comm_open", {"comm_id": uuid.uuid4().hex, "target_name": "jupyter.widget",
                                   "data": {"state": state, "buffer_paths": []}}, session))
        ws.send(_msg("comm_open", {"comm_id": uuid.uuid4().hex, "target_name": "no.such.target",
                                   "data": {}}, session))
        replies = _replies(ws, 8.0)
        ws.send(_msg("kernel_info_request", {}, session))  # control: the socket is alive
        alive = _replies(ws, 15.0)
    finally:
        ws.close()
    text = json.dumps(replies)
    assert "Traceback" not in text and ".py" not in text and "site-packages" not in text
    assert not [m for m in replies if m.get("msg_type") in ("stream", "error")]
    assert any(m.get("msg_type") == "kernel_info_reply" for m in alive)


@contextlib.contextmanager
def _one_page_dashboard(tmp_path, **cull):
    """Yield ``(base_url, process, pooled_kernel)`` of a dashboard serving one tiny page."""
    import psutil

    from tests.ui.voila_server import free_port, wait_http, wait_kernels

    make_notebook(tmp_path / "nbs" / "page.ipynb", 'title = "t"  # a title', "x = 1")
    port = free_port()
    with open(tmp_path / "voila.log", "w") as log:
        proc, state = dashboard.launch(port, names=["page"], notebooks_dir=tmp_path / "nbs",
                                       log_file=log, **cull)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/", proc)
            assert wait_kernels(proc, 1) == 1  # the preheated one
            yield base, proc, psutil.Process(proc.pid).children()[0]
        finally:
            dashboard.stop(proc, state)


def test_kernel_of_a_tab_gone_without_goodbye_is_culled(tmp_path):
    """A page fetched and never connected (a crashed tab) leaves a kernel; culling ends it."""
    from tests.ui.voila_server import kernel_count, wait_kernels

    with _one_page_dashboard(tmp_path, cull_idle_timeout=4, cull_interval=2) as (base, proc,
                                                                                   served):
        urllib.request.urlopen(base + "/voila/render/page.ipynb", timeout=120).read()
        served.wait(timeout=60)  # culled: gone, although its page never said goodbye
        assert wait_kernels(proc, 1, deadline_s=60) == 1, kernel_count(proc)  # pool refilled


def test_a_long_pooled_kernel_is_not_culled_under_the_page_it_was_handed_to(tmp_path):
    """A preheated kernel idle for longer than the cull timeout, then handed to a page, gets a
    full timeout for the page to connect (it was culled within a cull interval, so a page whose
    scripts loaded slowly met a dead kernel: "widget model not found", 404s)."""
    from tests.ui.voila_server import kernel_count, wait_kernels

    with _one_page_dashboard(tmp_path, cull_idle_timeout=8, cull_interval=1) as (base, proc,
                                                                                   pooled):
        time.sleep(10)  # the pooled kernel is now idle for longer than the timeout
        urllib.request.urlopen(base + "/voila/render/page.ipynb", timeout=120).read()
        time.sleep(5)  # five cull rounds while the page would be connecting
        assert pooled.is_running(), "the handed-out kernel was culled under its page"
        assert wait_kernels(proc, 1, deadline_s=60) == 1, kernel_count(proc)  # then culled


def test_report_copies_are_read_only_and_the_panel_is_not(tmp_path):
    import papermill

    from workbench.paths import NOTEBOOKS_DIR

    served = dashboard.prepare_serving_dir(None, tmp_path / "serve")
    for path in sorted(served.glob("*.ipynb")):
        source = papermill.inspect_notebook(str(NOTEBOOKS_DIR / path.name))
        injected = "read_only = True" in path.read_text()
        assert injected == ("read_only" in source), path.name
    assert "read_only = True" in (served / "04_backtest.ipynb").read_text()
    assert "read_only = True" not in (served / "00_control_panel.ipynb").read_text()
