"""Start and stop a real Voila server for tests (the dashboard's own launcher and settings)."""
from __future__ import annotations

import contextlib
import socket
import time
import urllib.request
from pathlib import Path
from typing import Iterator

from workbench.ui import dashboard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc, deadline_s: float = 90.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"voila did not answer at {url}")


@contextlib.contextmanager
def running_voila(names, notebooks_dir: Path, log_path: Path, env: dict | None = None,
                  timeout: int = 300) -> Iterator[str]:
    """Yield the base URL of a Voila server serving ``names``; always stop it (process group)."""
    port = free_port()
    with open(log_path, "w") as log:
        proc, serving_dir = dashboard.launch(port, names=names, notebooks_dir=notebooks_dir,
                                             env=env, log_file=log, timeout=timeout)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/", proc)
            yield base
        finally:
            dashboard.stop(proc, serving_dir)
