"""Start and stop a real Voila server for tests (the dashboard's own launcher and settings), and
drive Debian's chromium through Playwright against it."""
from __future__ import annotations

import contextlib
import socket
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from workbench.ui import dashboard

CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/run installs it); never `playwright install`
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Yield a Playwright ``Browser`` on :data:`CHROMIUM`; fail (not skip) when it is missing."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageLog:
    """Every request URL, failed request and console error of a tab."""

    def __init__(self, tab):
        self.urls, self.failed, self.errors = [], [], []
        tab.on("request", lambda r: self.urls.append(r.url))
        tab.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        tab.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.url} {r.status}"))
        tab.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        tab.on("pageerror", lambda e: self.errors.append(str(e)))

    def check(self, base: str, page: str = "landing") -> None:
        """Fail on a request leaving ``base``, a failed request or a console error."""
        outside = [u for u in self.urls if not (u.startswith(base + "/") or u.startswith("data:")
                                                or u.startswith("blob:"))]
        problems = [f"request leaving {base}: {u}" for u in outside[:5]]
        problems += [f"failed request: {f}" for f in self.failed]
        problems += [f"console error: {e}" for e in self.errors]
        if problems:
            pytest.fail(f"{page}:\n" + "\n".join(problems), pytrace=False)


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


def kernel_count(proc) -> int:
    """Return how many kernels the Voila server ``proc`` runs (its child processes)."""
    import psutil

    try:
        return len(psutil.Process(proc.pid).children())
    except psutil.NoSuchProcess:
        return 0


def wait_kernels(proc, expected: int, deadline_s: float = 120.0, settle_s: float = 3.0) -> int:
    """Wait until the server runs ``expected`` kernels for ``settle_s`` seconds; return the count."""
    end, stable_since, count = time.monotonic() + deadline_s, None, -1
    while time.monotonic() < end:
        count = kernel_count(proc)
        if count == expected:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= settle_s:
                return count
        else:
            stable_since = None
        time.sleep(0.5)
    return count


def wait_settled(proc, expected: int, deadline_s: float = 300.0, idle_cpu: float = 10.0) -> None:
    """Wait until the server runs ``expected`` kernels that are all idle: a pool kernel has then
    finished running its notebook (Voila logs a pool "filled" as soon as its kernels start)."""
    import psutil

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            kids = psutil.Process(proc.pid).children()
            for kid in kids:
                kid.cpu_percent(None)
            time.sleep(2.0)
            busy = sum(k.cpu_percent(None) for k in kids if k.is_running())
        except psutil.NoSuchProcess:
            continue
        if len(kids) == expected and busy < idle_cpu:
            return
    raise TimeoutError(f"kernels not settled at {expected} idle ones after {deadline_s} s")


def wait_pools_filled(log_path: Path, names, deadline_s: float = 300.0) -> None:
    """Wait until the server's log says every served notebook's kernel pool is filled."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        text = Path(log_path).read_text(errors="replace")
        if all(f"Kernel pool of {n}.ipynb is filled" in text for n in names):
            return
        time.sleep(0.5)
    raise TimeoutError(f"kernel pools of {list(names)} not filled after {deadline_s} s")


@contextlib.contextmanager
def running_dashboard(log_path: Path, env: dict | None = None, names=None,
                      timeout: int = 300) -> Iterator[tuple[str, object]]:
    """Yield ``(base_url, process)`` of a full dashboard whose preheated pools are all filled."""
    from workbench.paths import NOTEBOOKS_DIR

    names = names or dashboard.dashboard_notebooks()
    port = free_port()
    with open(log_path, "w") as log:
        proc, state_dir = dashboard.launch(port, names=names, notebooks_dir=NOTEBOOKS_DIR, env=env,
                                           log_file=log, timeout=timeout)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/", proc)
            wait_pools_filled(log_path, names)
            wait_settled(proc, len(names))
            yield base, proc
        finally:
            dashboard.stop(proc, state_dir)


#: installed before a page's own scripts: notes, in the animation frame that first shows Voila's
#: cells, the ms since navigation (a probe after the fact would wait for whatever script then
#: holds the main thread and count it as paint time)
PAINT_PROBE_JS = """(() => {
  const probe = () => {
    const cells = document.getElementById('rendered_cells');
    if (cells && cells.getBoundingClientRect().height > 0
        && getComputedStyle(cells).visibility !== 'hidden'
        && getComputedStyle(cells).display !== 'none') {
      window.__wbFirstPaint = performance.now();
      return;
    }
    requestAnimationFrame(probe);
  };
  requestAnimationFrame(probe);
})();"""


def open_page(tab, url: str, timeout_ms: int = 120_000) -> float:
    """Navigate ``tab`` to a Voila page; return the seconds until its cells are shown.

    Voila keeps ``#rendered_cells`` hidden behind a spinner until every output and widget is
    rendered, so its becoming visible is the page's first meaningful paint.
    """
    tab.add_init_script(PAINT_PROBE_JS)
    tab.goto(url, wait_until="commit", timeout=timeout_ms)
    tab.wait_for_selector("#rendered_cells", state="visible", timeout=timeout_ms)
    tab.wait_for_function("() => window.__wbFirstPaint !== undefined", timeout=timeout_ms)
    return tab.evaluate("() => window.__wbFirstPaint") / 1000.0
