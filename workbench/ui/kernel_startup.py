"""What a notebook kernel runs before the notebook: quiet libraries and, in the dashboard, quiet comms.

Library noise (Lightning's info lines, TensorFlow's and absl's logs, deprecation and "possible
user" warnings) reaches a notebook as pink stderr blocks in the page, the HTML report and the
demo's output, although nothing is wrong. :func:`quiet_libraries` keeps it out and lets errors
through: a root handler shows records of level ERROR and above (Lightning then adds no handler of
its own), and warnings of the deprecation family, or raised inside those libraries, are ignored.
An exception in a cell is not a log record or a warning and still shows.

The suite runner and the dashboard point the kernels' ``IPYTHONDIR`` at a folder whose startup
file (:func:`write_startup`) calls :func:`notebook_kernel` or :func:`dashboard_kernel`; a quant's
own JupyterLab kernel stays as it is.
"""
from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

#: modules whose UserWarnings are noise in a report (matched against the warning's module)
NOISY_MODULES = r"(lightning|lightning_fabric|pytorch_lightning|torch|torchmetrics|tensorflow|keras|absl)(\.|$)"
NOISY_CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
#: loggers whose packages add a console handler of their own at import (``lightning`` does)
CONSOLE_LOGGERS = ("lightning", "pytorch_lightning")
#: the loggers a viewer's comm messages write to when they fail (with a traceback)
COMM_LOGGERS = ("Comm", "comm", "ipykernel.comm")
KERNEL_LOG_ENV = "WORKBENCH_KERNEL_LOG"


class _ErrorsOnlyLogger(logging.Logger):
    """A logger whose handlers, whoever adds them, pass records of level ERROR and above only."""

    def addHandler(self, hdlr: logging.Handler) -> None:  # noqa: N802 -- logging's name
        hdlr.setLevel(max(hdlr.level, logging.ERROR))
        self.propagate = False  # the package's handler shows its errors; the root's would repeat them
        super().addHandler(hdlr)


def _errors_only(name: str) -> None:
    """Make the console handler a package adds to logger ``name`` show errors only."""
    existing = logging.Logger.manager.loggerDict.get(name)
    if isinstance(existing, logging.Logger):  # the package is already imported
        for handler in existing.handlers:
            handler.setLevel(max(handler.level, logging.ERROR))
        return
    previous = logging.getLoggerClass()
    logging.setLoggerClass(_ErrorsOnlyLogger)
    try:
        logging.getLogger(name)
    finally:
        logging.setLoggerClass(previous)


def quiet_libraries() -> None:
    """Show log records of level ERROR and above only, and no library or deprecation warnings.

    Loggers below the quieted ones keep their own levels and handlers (a run's training.log
    still gets Lightning's info lines).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in CONSOLE_LOGGERS:
        _errors_only(name)
    root = logging.getLogger()
    if not any(getattr(h, "_workbench", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.ERROR)
        handler._workbench = True
        root.addHandler(handler)
    quiet_warnings()


def quiet_warnings() -> None:
    """Ignore deprecation-family warnings and the libraries' "possible user" warnings: a user of
    the workbench cannot act on them (the command line's stderr keeps progress and errors)."""
    for category in NOISY_CATEGORIES:
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", category=UserWarning, module=NOISY_MODULES)


def notebook_kernel() -> None:
    """Startup of a suite (papermill) kernel."""
    quiet_libraries()


def dashboard_kernel() -> None:
    """Startup of a dashboard kernel: quiet libraries; comm failures go to the kernel log only.

    A ``comm_open`` naming an unknown widget module makes the comm manager log the exception
    with its traceback; the kernel forwards its stderr to the viewer, so those records go to
    ``$WORKBENCH_KERNEL_LOG`` (or nowhere) instead.
    """
    quiet_libraries()
    os.environ["WORKBENCH_DASHBOARD_KERNEL"] = "1"  # plots.setup_notebook: no second plotly.js
    target = os.environ.get(KERNEL_LOG_ENV)
    handler = logging.FileHandler(target) if target else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    for name in COMM_LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False


def write_startup(ipython_dir: Path, function: str) -> Path:
    """Write ``ipython_dir``'s startup file calling ``function`` of this module; return the dir."""
    startup = Path(ipython_dir) / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-workbench.py").write_text(
        f"from workbench.ui.kernel_startup import {function}\n{function}()\n"
        f"del {function}\n")
    return Path(ipython_dir)
