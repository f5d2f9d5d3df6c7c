"""The Voila dashboard: a landing page, the control panel and read-only reports on 127.0.0.1.

Settings, and why:

* **Every notebook of ``notebooks/``** (:func:`dashboard_notebooks`), and only those, is copied
  into a fresh serving folder, so the Voila tree cannot reach any other file of the project. The
  landing page lists them with the title and description of their ``workbench`` metadata.
* **Reports open read-only**: a copy whose notebook declares a ``read_only`` parameter gets
  ``read_only = True`` injected (papermill's way), so a page view never trains a model or stores
  a backtest; the notebook shows what exists or says what is missing.
* **Sources stripped, tracebacks off**: viewers see outputs and widgets only; an error shows a
  generic message, never code or paths.
* **No code from viewers**: Voila's kernel manager forwards only comm, kernel-info and shutdown
  messages from the browser; an ``execute_request`` sent over the kernel websocket is dropped.
  Viewers can press buttons and pick values; widget callbacks never evaluate input as code.
  Dashboard kernels log comm errors to a file (:mod:`workbench.ui.kernel_startup`), so a
  ``comm_open`` for an unknown widget module sends the viewer no traceback.
* **Host and Origin allow-list** (:mod:`workbench.ui.voila_app`): requests for any host but
  127.0.0.1/localhost (plus ``--allow-host``) are refused, against DNS rebinding.
* **Preheated kernels**: each page has one kernel that has already run the notebook
  (Voila's ``preheat_kernel``), so a page paints in about a second instead of 4-11 s.
* **A used kernel is replaced after the page painted**: the pool refills
  :data:`POOL_FILL_DELAY` s after a hand-out (Voila's default, 1 s, ran the next kernel's
  notebook in the middle of the page's own load on a 2-core machine).
* **Kernels end with their tab**: the page's unload beacon shuts its kernel down (the ``_xsrf``
  cookie it needs is set by :mod:`workbench.ui.voila_app`); a kernel whose tab vanished without
  the beacon is culled after :data:`CULL_IDLE_TIMEOUT` s with no connection (checked every
  :data:`CULL_INTERVAL` s); a connected kernel (an open panel) is never culled.
* **Nothing leaves 127.0.0.1**: the ``workbench`` Voila template drops the CDN stylesheets, and
  widget and plotly code come from the local Voila and kernel. jupyterlab-plotly's lab extension
  (:data:`UNUSED_EXTENSIONS`) is not loaded: no page uses plotly's mime renderer.
* **An executor timeout** per cell, no browser opened by the server.

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
from workbench.ui.kernel_startup import KERNEL_LOG_ENV, write_startup
from workbench.ui.notebooks import declared_parameters, ensure_kernel, notebook_path

HOST = "127.0.0.1"
EXECUTOR_TIMEOUT = 300  # seconds per cell while a page renders
CULL_IDLE_TIMEOUT = 60  # seconds a kernel without a connection may stay idle
POOL_FILL_DELAY = 10  # seconds before a used preheated kernel is replaced: after its page painted
#: lab extensions no dashboard page uses: figures go out as HTML (plotly.js from the server) and
#: FigureWidgets carry their own code (anywidget), so jupyterlab-plotly's 5 MB bundle is dead weight
UNUSED_EXTENSIONS = ("jupyterlab-plotly",)
CULL_INTERVAL = 30  # seconds between cull checks: a closed tab's kernel is gone within 90 s
TEMPLATE = "workbench"  # Voila's lab template without CDN requests (workbench/ui/jupyter)
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter"
READ_ONLY = "read_only"  # the parameter the dashboard sets in every report notebook
STOPPED_TEXT = "The page stopped at this point; the message above says why."


def dashboard_notebooks(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[str]:
    """Return the names of the notebooks the dashboard serves: every notebook of the folder."""
    return sorted(p.stem for p in Path(notebooks_dir).glob("*.ipynb"))


def _served_copy(src: Path, dest: Path, db: str | None) -> None:
    """Copy ``src`` to ``dest`` with ``read_only = True`` and ``db`` injected where declared."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    declared = declared_parameters(src)
    values = {k: v for k, v in ((READ_ONLY, True), ("db", db)) if v and k in declared}
    if not values:
        shutil.copy2(src, dest)
        return
    # papermill's loader adds the cell metadata (tags) that its parameterizer reads
    nbformat.write(parameterize_notebook(load_notebook_node(str(src)), values), dest)


def prepare_serving_dir(names: Sequence[str] | None = None, dest: Path | None = None,
                        notebooks_dir: Path = NOTEBOOKS_DIR, db: str | None = None) -> Path:
    """Copy the listed notebooks (default: all) and nothing else into ``dest`` (default: a temp
    folder); the copies of report notebooks are read-only (see :data:`READ_ONLY`).

    ``db``: the database file, injected as the ``db`` parameter of each notebook declaring one.

    Raises
    ------
    NotFoundError : when a listed notebook does not exist.
    """
    names = dashboard_notebooks(notebooks_dir) if names is None else names
    sources = [notebook_path(n, notebooks_dir) for n in names]
    dest = Path(dest) if dest else Path(tempfile.mkdtemp(prefix="workbench-voila-"))
    dest.mkdir(parents=True, exist_ok=True)
    for src in sources:
        _served_copy(src, dest / src.name, str(db) if db else None)
    return dest


def sign_notebooks(serving_dir: Path, notary_dir: Path) -> list[str]:
    """Sign the served copies as trusted in a signature store of their own; return the settings
    that point Voila's notary at it.

    The copies are the project's own notebooks, so the dashboard trusts them; unsigned, Voila
    logs "Notebook ... is not trusted" for each of them at every start. The secret and the
    signature database live in ``notary_dir`` (the server's state folder), not in the user's
    Jupyter data folder.
    """
    import nbformat
    from nbformat.sign import NotebookNotary

    notary_dir.mkdir(parents=True, exist_ok=True)
    files = {"db_file": str(notary_dir / "nbsignatures.db"),
             "secret_file": str(notary_dir / "notebook_secret")}
    notary = NotebookNotary(**files)
    for path in sorted(Path(serving_dir).glob("*.ipynb")):
        notary.sign(nbformat.read(path, as_version=4))
    notary.store.close()
    return [f"--NotebookNotary.{key}={value}" for key, value in files.items()]


def voila_argv(serving_dir: Path, port: int, *, timeout: int = EXECUTOR_TIMEOUT,
               cull_idle_timeout: int = CULL_IDLE_TIMEOUT, cull_interval: int = CULL_INTERVAL,
               allow_hosts: Sequence[str] = (), preheat: bool = True,
               notary: Sequence[str] = ()) -> list[str]:
    """Return the command line that starts the dashboard's Voila with its settings.

    ``notary``: the settings :func:`sign_notebooks` returned for the served copies.
    """
    return [
        sys.executable, "-m", "workbench.ui.voila_app", str(serving_dir),
        f"--port={port}",
        f"--Voila.ip={HOST}",
        "--Voila.open_browser=False",
        "--Voila.port_retries=0",
        f"--VoilaConfiguration.template={TEMPLATE}",
        "--VoilaConfiguration.strip_sources=True",
        "--VoilaConfiguration.show_tracebacks=False",
        f"--VoilaConfiguration.preheat_kernel={preheat}",
        "--VoilaConfiguration.multi_kernel_manager_class="
        "workbench.ui.voila_app.HandOutKernelManager",
        f"--VoilaKernelManager.fill_delay={POOL_FILL_DELAY}",
        f"--VoilaExecutor.timeout={timeout}",
        f"--VoilaExecutor.cell_error_instruction={STOPPED_TEXT}",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle_timeout}",
        f"--MappingKernelManager.cull_interval={cull_interval}",
        "--MappingKernelManager.cull_connected=False",
        # kernels talk to this server only: sockets on the local file system, not five localhost
        # TCP ports each (and no "running over TCP without encryption" line per kernel)
        "--KernelManager.transport=ipc",
        *notary,
    ] + [f"--VoilaConfiguration.extension_denylist={name}" for name in UNUSED_EXTENSIONS] + [
        f"--WorkbenchVoila.allowed_hosts={host}" for host in allow_hosts]


def kernel_env(extra: dict[str, str] | None = None, state_dir: Path | None = None) -> dict[str, str]:
    """Return the environment for the server and its kernels.

    One BLAS/torch thread per kernel; the ``workbench`` template on the Jupyter data path; with
    ``state_dir``, an IPython folder whose startup file quiets the dashboard kernels.
    """
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"})
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(JUPYTER_DATA),
                                                        os.environ.get("JUPYTER_PATH")]))
    if state_dir is not None:
        env["IPYTHONDIR"] = str(state_dir / "ipython")
        env[KERNEL_LOG_ENV] = str(state_dir / "kernels.log")
    env.update(extra or {})
    return env


def launch(port: int, *, names: Sequence[str] | None = None,
           notebooks_dir: Path = NOTEBOOKS_DIR, timeout: int = EXECUTOR_TIMEOUT,
           env: dict[str, str] | None = None, log_file=None,
           cull_idle_timeout: int = CULL_IDLE_TIMEOUT, cull_interval: int = CULL_INTERVAL,
           allow_hosts: Sequence[str] = (), preheat: bool = True,
           db: str | None = None) -> tuple[subprocess.Popen, Path]:
    """Start the Voila server in its own process group; return ``(process, state_dir)``.

    ``state_dir`` holds the served copies (``notebooks/``), the kernels' IPython folder and
    their log. The caller stops it with :func:`stop` (which kills the whole group, kernels
    included, and removes ``state_dir``).
    """
    ensure_kernel()
    state_dir = Path(tempfile.mkdtemp(prefix="workbench-voila-"))
    serving_dir = prepare_serving_dir(names, state_dir / "notebooks", notebooks_dir=notebooks_dir,
                                      db=db)
    write_startup(state_dir / "ipython", "dashboard_kernel")
    notary = sign_notebooks(serving_dir, state_dir / "notary")
    proc = subprocess.Popen(
        voila_argv(serving_dir, port, timeout=timeout, cull_idle_timeout=cull_idle_timeout,
                   cull_interval=cull_interval, allow_hosts=allow_hosts, preheat=preheat,
                   notary=notary),
        env=kernel_env(env, state_dir), stdout=log_file or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log_file else subprocess.DEVNULL, start_new_session=True)
    return proc, state_dir


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


def serve(port: int = 8866, timeout: int = EXECUTOR_TIMEOUT, db: str | None = None,
          allow_hosts: Sequence[str] = ()) -> int:
    """Run the dashboard on database ``db`` in the foreground until interrupted; return the
    server's exit status."""
    def _terminate(signum, frame):  # SIGTERM: leave through ``finally`` so Voila stops too
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    proc, state_dir = launch(port, timeout=timeout, log_file=sys.stderr, allow_hosts=allow_hosts,
                             db=db)
    served = ", ".join(dashboard_notebooks())
    print(f"workbench dashboard: http://{HOST}:{port}/ (serving {served})", flush=True)
    try:
        return proc.wait()
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        stop(proc, state_dir)
