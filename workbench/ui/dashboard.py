"""The Voila dashboard: the control panel and the read-only report notebooks on 127.0.0.1.

Settings, and why:

* **An explicit notebook list** (:data:`DASHBOARD_NOTEBOOKS`): only those notebooks are copied into
  a fresh serving folder, so the Voila tree cannot reach any other file of the project.
* **Sources stripped, tracebacks off**: viewers see outputs and widgets only; an error shows a
  generic message, never code or paths.
* **No code from viewers**: Voila's kernel manager forwards only comm, kernel-info and shutdown
  messages from the browser; an ``execute_request`` sent over the kernel websocket is dropped.
  Viewers can press buttons and pick values; widget callbacks never evaluate input as code.
* **An executor timeout** per cell, and **idle-kernel culling**: every page load starts a kernel,
  so kernels idle past :data:`CULL_IDLE_TIMEOUT` seconds are shut down.
* **127.0.0.1 only**, no browser opened by the server.

The database reaches the notebooks through their ``db`` parameter: :func:`prepare_serving_dir`
injects it into each served copy (papermill's injected-parameters cell), so a page reads the store
it was launched for even when the kernel's environment names another. The kernels read
the store through :class:`workbench.data.store.Store`, whose short connections let a dashboard
read while another kernel writes.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from workbench.paths import NOTEBOOKS_DIR
from workbench.ui.notebooks import KERNEL_NAME, declared_parameters, ensure_kernel, notebook_path

#: the notebooks the dashboard serves: the control panel and read-only reports
DASHBOARD_NOTEBOOKS = ("00_control_panel", "04_backtest", "06_ledger")

HOST = "127.0.0.1"
EXECUTOR_TIMEOUT = 300  # seconds per cell while a page renders
CULL_IDLE_TIMEOUT = 900  # seconds a kernel may stay idle before it is shut down
CULL_INTERVAL = 60  # seconds between cull checks


def prepare_serving_dir(names: Sequence[str] = DASHBOARD_NOTEBOOKS, dest: Path | None = None,
                        notebooks_dir: Path = NOTEBOOKS_DIR, db: str | None = None) -> Path:
    """Copy the listed notebooks (and nothing else) into ``dest`` (default: a new temp folder).

    ``db``: the database file, injected as the ``db`` parameter of each notebook declaring one.

    Raises
    ------
    NotFoundError : when a listed notebook does not exist.
    """
    sources = [notebook_path(n, notebooks_dir) for n in names]
    dest = Path(dest) if dest else Path(tempfile.mkdtemp(prefix="workbench-voila-"))
    dest.mkdir(parents=True, exist_ok=True)
    for src in sources:
        shutil.copy2(src, dest / src.name)
        if db:
            _inject_db(dest / src.name, str(db))
    return dest


def _inject_db(path: Path, db: str) -> None:
    """Set the ``db`` parameter of a served copy, when the notebook declares one."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    if "db" not in declared_parameters(path):
        return
    # papermill's loader adds the cell metadata (tags) that its parameterizer reads
    nb = parameterize_notebook(load_notebook_node(str(path)), {"db": db})
    nbformat.write(nb, path)


def voila_argv(serving_dir: Path, port: int, *, timeout: int = EXECUTOR_TIMEOUT,
               cull_idle_timeout: int = CULL_IDLE_TIMEOUT,
               cull_interval: int = CULL_INTERVAL) -> list[str]:
    """Return the command line that starts Voila with the dashboard's settings."""
    return [
        sys.executable, "-m", "voila", str(serving_dir),
        f"--port={port}",
        f"--Voila.ip={HOST}",
        "--Voila.open_browser=False",
        "--Voila.port_retries=0",
        "--VoilaConfiguration.strip_sources=True",
        "--VoilaConfiguration.show_tracebacks=False",
        f"--VoilaExecutor.timeout={timeout}",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle_timeout}",
        f"--MappingKernelManager.cull_interval={cull_interval}",
        "--MappingKernelManager.cull_connected=True",
    ]


def kernel_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment for the server and its kernels (one BLAS/torch thread each)."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"})
    env.update(extra or {})
    return env


def launch(port: int, *, names: Sequence[str] = DASHBOARD_NOTEBOOKS,
           notebooks_dir: Path = NOTEBOOKS_DIR, timeout: int = EXECUTOR_TIMEOUT,
           env: dict[str, str] | None = None, log_file=None,
           cull_idle_timeout: int = CULL_IDLE_TIMEOUT,
           db: str | None = None) -> tuple[subprocess.Popen, Path]:
    """Start the Voila server in its own process group; return ``(process, serving_dir)``.

    The caller stops it with :func:`stop` (which kills the whole group, kernels included).
    """
    ensure_kernel()
    serving_dir = prepare_serving_dir(names, notebooks_dir=notebooks_dir, db=db)
    proc = subprocess.Popen(
        voila_argv(serving_dir, port, timeout=timeout, cull_idle_timeout=cull_idle_timeout),
        env=kernel_env(env), stdout=log_file or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log_file else subprocess.DEVNULL, start_new_session=True)
    return proc, serving_dir


def stop(proc: subprocess.Popen, serving_dir: Path | None = None, grace: float = 10.0) -> None:
    """Stop a server started by :func:`launch`: SIGTERM its process group, then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)
        except ProcessLookupError:
            pass
    try:  # kernels live in the same group; make sure none outlives the server
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if serving_dir is not None:
        shutil.rmtree(serving_dir, ignore_errors=True)


def serve(port: int = 8866, timeout: int = EXECUTOR_TIMEOUT, db: str | None = None) -> int:
    """Run the dashboard on database ``db`` in the foreground until interrupted; return the
    server's exit status."""
    def _terminate(signum, frame):  # SIGTERM: leave through ``finally`` so Voila stops too
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    proc, serving_dir = launch(port, timeout=timeout, log_file=sys.stderr, db=db)
    print(f"workbench dashboard: http://{HOST}:{port}/ (serving {', '.join(DASHBOARD_NOTEBOOKS)})",
          flush=True)
    try:
        return proc.wait()
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        stop(proc, serving_dir)
