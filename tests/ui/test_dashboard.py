"""The Voila dashboard: settings, the explicit notebook list, and a real server that refuses code."""
from __future__ import annotations

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
                    "--MappingKernelManager.cull_idle_timeout=", "--MappingKernelManager.cull_interval="):
        assert setting in argv


def test_serving_dir_holds_only_the_listed_notebooks(tmp_path):
    src = tmp_path / "nbs"
    make_notebook(src / "a.ipynb", "x = 1  # x")
    make_notebook(src / "b.ipynb", "x = 1  # x")
    (src / "secret.txt").write_text("no")
    served = dashboard.prepare_serving_dir(["a"], tmp_path / "serve", notebooks_dir=src)
    assert sorted(p.name for p in served.iterdir()) == ["a.ipynb"]
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
        with pytest.raises(urllib.error.HTTPError):  # only the explicit list is served
            urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/render/02_train.ipynb",
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
