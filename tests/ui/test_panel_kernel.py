"""Widget updates from a worker thread reach the front end through a real ipykernel 7 kernel
(the log and status HTML, and the chart's plotly FigureWidget)."""
from __future__ import annotations

import json
import queue

import pytest

from workbench.ui.notebooks import KERNEL_NAME, ensure_kernel

CODE = """
import threading
from workbench.ui.panel import ControlPanel
panel = ControlPanel(db={db!r})
def worker():
    panel.log("from-worker-thread")
    panel.status.value = "status-from-thread"
    panel.chart.layout.title.text = "title-from-thread"
t = threading.Thread(target=worker)
t.start(); t.join()
print("ids", panel.log_output.model_id, panel.status.model_id, panel.chart.model_id)
"""


def _run(kc, code: str, timeout: float = 120.0) -> list[dict]:
    msg_id = kc.execute(code)
    out = []
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no idle status within {timeout} s; got {[m['msg_type'] for m in out]}")
        out.append(msg)
        if (msg["msg_type"] == "status" and msg["parent_header"].get("msg_id") == msg_id
                and msg["content"]["execution_state"] == "idle"):
            return out


def test_thread_trait_updates_arrive_as_comm_messages(ui_db):
    from jupyter_client.manager import start_new_kernel

    ensure_kernel()
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME)
    try:
        msgs = _run(kc, CODE.format(db=str(ui_db)))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
    assert not errors, errors
    text = "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")
    log_id, status_id, chart_id = text.split("ids", 1)[1].split()
    updates = {}
    for m in msgs:
        data = m["content"].get("data", {}) if m["msg_type"] == "comm_msg" else {}
        if data.get("method") == "update":
            updates.setdefault(m["content"]["comm_id"], []).append((data["state"], m["buffers"]))
    log_texts = [state.get("value", "") for state, _ in updates.get(log_id, [])]
    assert any("from-worker-thread" in t for t in log_texts)
    assert any(s.get("value") == "status-from-thread" for s, _ in updates.get(status_id, []))
    # the chart is a plotly FigureWidget: a layout change is a state update of its model
    assert any("title-from-thread" in json.dumps(state) for state, _ in updates.get(chart_id, []))
