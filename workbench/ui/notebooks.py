"""The notebook suite: papermill execution, HTML reports and the report index.

:func:`run_suite` executes notebooks headless with an explicit kernel (``workbench``, registered by
``make setup``), a working directory and a per-cell execution timeout. For every notebook it writes,
into ``reports/<YYYY-MM-DD>/``:

* ``<name>.ipynb``: the executed notebook (papermill marks the failing cell when one fails);
* ``<name>.html``: an HTML export with the code inputs hidden (exported for failures too, with the
  failing cell's source shown where papermill stopped);
* ``<name>.json``: the headline values the notebook recorded with :func:`workbench.ui.record`,
  plus its status, parameters, error and wall time.

``reports/index.html`` links every report found under ``reports/`` with its headline values.
Parameters come from a profile (``ci``: the notebooks' own cheap defaults; ``full``: larger ranges
and models) overlaid with explicit ``-p key value`` pairs; a key no selected notebook declares is
an error. A model trained by ``02_train`` is handed to the notebooks after it.

Non-goals: scheduling, parallel execution (notebooks share one store and one training lock).
"""
from __future__ import annotations

import ast
import contextlib
import datetime as _dt
import html
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from workbench.errors import NotFoundError, ParameterError
from workbench.paths import NOTEBOOKS_DIR, REPORTS_DIR
from workbench.ui.record import RECORD_ENV

KERNEL_NAME = "workbench"

#: the suite, in execution order (data first, then the training run the later notebooks use)
SUITE = (
    "01_data",
    "02_train",
    "03_live_session",
    "04_backtest",
    "05_price_model",
    "06_ledger",
    "07_research",
    "00_control_panel",
)

#: parameter sets per profile; ``ci`` keeps every notebook's cheap defaults
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "ci": {},
    "full": {
        "01_data": {"chart_candles": 600},
        "02_train": {"quick": False, "epochs": 10, "candles": 20000},
        "03_live_session": {"candles": 2000},
        "04_backtest": {"candles": 20000, "lookahead_samples": 50},
        "05_price_model": {"epochs": 30, "skip_plots": False, "skip_robustness": False,
                           "skip_onnx": False},
        "06_ledger": {},
        "07_research": {"trials": 8, "workers": 2, "folds": 3, "window": 64,
                        "max_windows": 3000, "epochs": 3, "draws": 100},
        "00_control_panel": {},
    },
}

#: a recorded value that later notebooks receive as a parameter: (notebook, record, parameter)
HANDOFFS = (("02_train", "run_id", "model"),)

DEFAULT_TIMEOUT = 600  # seconds per cell; the CI defaults need a few seconds each


@dataclass
class NotebookResult:
    """The outcome of one executed notebook."""

    name: str
    status: str  # "ok" or "failed"
    ipynb: str
    html: str
    record_file: str
    parameters: dict[str, Any]
    records: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every cell ran without error."""
        return self.status == "ok"


@dataclass
class SuiteResult:
    """The outcome of a suite run: one result per notebook and the index that links them."""

    out_dir: str
    index: str
    results: list[NotebookResult]

    @property
    def ok(self) -> bool:
        """True when every notebook succeeded."""
        return all(r.ok for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON data (for ``--json``)."""
        return {"ok": self.ok, "out_dir": self.out_dir, "index": self.index,
                "results": [asdict(r) for r in self.results]}


# -- notebooks and parameters ----------------------------------------------------------------

def notebook_path(name: str, notebooks_dir: Path = NOTEBOOKS_DIR) -> Path:
    """Return the path of notebook ``name`` (with or without ``.ipynb``).

    Raises
    ------
    NotFoundError : when no such notebook exists; the message lists the known ones.
    """
    stem = Path(name).name.removesuffix(".ipynb")
    path = notebooks_dir / f"{stem}.ipynb"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in notebooks_dir.glob("*.ipynb")))
        raise NotFoundError(f"notebook {name!r} not found in {notebooks_dir} (known: {known})")
    return path


def declared_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """Return the parameters a notebook declares in its ``parameters`` cell (papermill's view)."""
    import papermill

    return papermill.inspect_notebook(str(path))


def declared_type(spec: Mapping[str, Any]) -> str | None:
    """Return a declared parameter's type name: its annotation, else the type of its default."""
    if spec.get("inferred_type_name") not in (None, "None"):
        return spec["inferred_type_name"]
    try:
        return type(ast.literal_eval(spec.get("default", ""))).__name__
    except (ValueError, SyntaxError):
        return None


def coerce(value: Any, type_name: str | None, *, notebook: str, key: str) -> Any:
    """Convert a ``-p`` value (a string from the command line) to the declared parameter type.

    Raises
    ------
    ParameterError : when the value cannot be read as that type; names notebook and key.
    """
    if not isinstance(value, str) or type_name in (None, "None", "str"):
        return value
    try:
        if type_name == "bool":
            lowered = value.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return lowered in ("true", "1", "yes")
        if type_name == "int":
            return int(value)
        if type_name == "float":
            return float(value)
    except ValueError:
        raise ParameterError(
            f"notebook {notebook}: parameter {key!r} expects {type_name}, got {value!r}") from None
    return value


def resolve_parameters(names: Sequence[str], profile: str, overrides: Mapping[str, Any],
                       notebooks_dir: Path = NOTEBOOKS_DIR) -> dict[str, dict[str, Any]]:
    """Return the parameters to inject into each notebook: profile values, then ``overrides``.

    An override applies to every selected notebook that declares the key.

    Raises
    ------
    ParameterError : on an unknown profile, or an override no selected notebook declares.
    """
    if profile not in PROFILES:
        raise ParameterError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    plan: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for name in names:
        declared = declared_parameters(notebook_path(name, notebooks_dir))
        params = {k: v for k, v in PROFILES[profile].get(name, {}).items() if k in declared}
        for key, value in overrides.items():
            if key in declared:
                used.add(key)
                params[key] = coerce(value, declared_type(declared[key]),
                                     notebook=name, key=key)
        plan[name] = params
    unknown = sorted(set(overrides) - used)
    if unknown:
        raise ParameterError(
            f"parameter(s) {', '.join(unknown)} not declared by any of: {', '.join(names)}")
    return plan


# -- execution -------------------------------------------------------------------------------

def ensure_kernel(name: str = KERNEL_NAME) -> None:
    """Register the ``workbench`` kernel for this interpreter when it is missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix",
                        "--name", name, "--display-name", f"{name} (.venv)"],
                       check=True, capture_output=True)


@contextlib.contextmanager
def _kernel_env(record_file: Path, extra: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables the kernel inherits, restoring them afterwards.

    The kernel's IPython folder is a temporary one whose startup file quiets library warnings
    and logs (:func:`workbench.ui.kernel_startup.notebook_kernel`).
    """
    from workbench.ui.kernel_startup import write_startup

    ipython = tempfile.TemporaryDirectory(prefix="workbench-ipython-")
    values = {RECORD_ENV: str(record_file), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
              "IPYTHONDIR": str(write_startup(Path(ipython.name), "notebook_kernel")), **extra}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        ipython.cleanup()
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _show_failing_source(ipynb: Path) -> None:
    """Put the failing cell's source into papermill's error anchor so the HTML report shows it."""
    import nbformat

    nb = nbformat.read(ipynb, as_version=4)
    for i, cell in enumerate(nb.cells[:-1]):
        if cell.cell_type == "markdown" and 'id="papermill-error-cell"' in cell.source:
            failing = nb.cells[i + 1]
            cell.source += "\n\n```python\n" + failing.source + "\n```\n"
            nbformat.write(nb, ipynb)
            return


def export_html(ipynb: Path) -> Path:
    """Write ``<name>.html`` next to an executed notebook: code inputs hidden, nothing fetched
    from a CDN, widgets as static snapshots (see :mod:`workbench.ui.report_html`)."""
    from workbench.ui.report_html import export_offline

    return export_offline(ipynb)


def _error_text(exc: BaseException) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    return f"{ename}: {evalue}"


def _kernel_transport():
    """Kernel-manager settings of suite kernels: sockets on the local file system (IPC).

    The kernel talks to papermill in this process only; over TCP it would listen on five
    localhost ports and log "running over TCP without encryption" into every run's output.
    """
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc"}})


def run_notebook(name: str, out_dir: Path, parameters: Mapping[str, Any], *,
                 kernel: str = KERNEL_NAME, timeout: int = DEFAULT_TIMEOUT,
                 env: Mapping[str, str] | None = None,
                 notebooks_dir: Path = NOTEBOOKS_DIR) -> NotebookResult:
    """Execute one notebook with papermill and write its ``.ipynb``, ``.html`` and ``.json``.

    The kernel's working directory is ``out_dir``, so anything a notebook writes relative to its
    cwd lands beside its report. A failing cell does not raise: the result has status
    ``"failed"`` and the error, and the HTML report still gets written.
    """
    import papermill

    src = notebook_path(name, notebooks_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ipynb, record_file = out_dir / src.name, out_dir / f"{src.stem}.json"
    record_file.unlink(missing_ok=True)
    error, started = None, time.perf_counter()
    with _kernel_env(record_file, env or {}):
        try:
            papermill.execute_notebook(
                str(src), str(ipynb), parameters=dict(parameters), kernel_name=kernel,
                cwd=str(out_dir), progress_bar=False, execution_timeout=timeout,
                start_timeout=120, config=_kernel_transport())
        except Exception as exc:  # papermill's execution error or a kernel death
            error = _error_text(exc)
    seconds = time.perf_counter() - started
    if error and ipynb.exists():
        _show_failing_source(ipynb)
    html_path = export_html(ipynb) if ipynb.exists() else out_dir / f"{src.stem}.html"
    records = json.loads(record_file.read_text()).get("records", {}) if record_file.exists() else {}
    result = NotebookResult(name=src.stem, status="failed" if error else "ok", ipynb=str(ipynb),
                            html=str(html_path), record_file=str(record_file),
                            parameters=dict(parameters), records=records, error=error,
                            seconds=round(seconds, 2))
    doc = asdict(result)
    record_file.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))
    return result


def run_suite(names: Sequence[str] | None = None, *, overrides: Mapping[str, Any] | None = None,
              profile: str = "ci", reports_root: Path = REPORTS_DIR, kernel: str = KERNEL_NAME,
              timeout: int = DEFAULT_TIMEOUT, env: Mapping[str, str] | None = None,
              notebooks_dir: Path = NOTEBOOKS_DIR, date: str | None = None,
              log=None) -> SuiteResult:
    """Execute the selected notebooks (default: the whole :data:`SUITE`) in order.

    Parameters
    ----------
    names : notebook names (``04_backtest`` or ``04_backtest.ipynb``); default the whole suite.
    overrides : ``-p`` values, applied to every selected notebook that declares the key.
    profile : ``ci`` or ``full`` (see :data:`PROFILES`).
    reports_root : the ``reports/`` folder; results go to ``reports_root/<date>/``.
    kernel, timeout : kernel name and per-cell execution timeout in seconds.
    env : extra environment variables for the kernels (for example ``WORKBENCH_DB``).
    log : optional callable receiving one line per notebook.

    Returns
    -------
    SuiteResult; ``ok`` is False when any notebook failed (every notebook still runs).

    Raises
    ------
    NotFoundError, ParameterError : for an unknown notebook, profile or parameter, before
        anything runs.
    """
    names = [notebook_path(n, notebooks_dir).stem for n in (names or SUITE)]
    overrides = dict(overrides or {})
    plan = resolve_parameters(names, profile, overrides, notebooks_dir)
    ensure_kernel(kernel)
    out_dir = Path(reports_root) / (date or _dt.date.today().isoformat())
    results: list[NotebookResult] = []
    for name in names:
        params = dict(plan[name])
        _apply_handoffs(name, params, results, overrides, notebooks_dir)
        result = run_notebook(name, out_dir, params, kernel=kernel, timeout=timeout, env=env,
                              notebooks_dir=notebooks_dir)
        results.append(result)
        if log:
            log(f"{result.status:6} {name:18} {result.seconds:7.1f}s  {_headline(result.records)}"
                + (f"  [{result.error}]" if result.error else ""))
    index = write_index(Path(reports_root))
    return SuiteResult(out_dir=str(out_dir), index=str(index), results=results)


def _apply_handoffs(name: str, params: dict, done: list[NotebookResult],
                    overrides: Mapping[str, Any], notebooks_dir: Path) -> None:
    """Pass values recorded by earlier notebooks (the trained run id) to later ones."""
    declared = None
    for source, rec_key, param in HANDOFFS:
        if param in overrides:
            continue
        for prior in done:
            if prior.name == source and prior.ok and rec_key in prior.records:
                declared = declared or declared_parameters(notebook_path(name, notebooks_dir))
                if param in declared:
                    params[param] = prior.records[rec_key]


# -- the index -------------------------------------------------------------------------------

def _headline(records: Mapping[str, Any], limit: int = 6) -> str:
    items = [(k, v) for k, v in records.items() if not isinstance(v, (dict, list))][:limit]
    return ", ".join(f"{k}={_fmt(v)}" for k, v in items)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _iso_ms(value: float) -> str:
    moment = _dt.datetime.fromtimestamp(value / 1000, tz=_dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.2f} %"


def _dollars(value: float) -> str:
    return f"{value:,.2f} $"


#: how the index shows a recorded value: by record name, else by name suffix (``_ts``, ``_s``,
#: ``_pct``); named fractions are shown as percentages, ``*_pct`` values are already percent
#: (as backtesting.py's ``Return [%]``), epoch-ms times as ISO UTC
RECORD_FORMATS: dict[str, Any] = {
    "_ts": _iso_ms, "_s": lambda v: f"{v:.1f} s", "_pct": lambda v: f"{v:.2f} %",
    "pnl": _dollars, "equity": _dollars,
    "win_rate": _percent, "hit_rate": _percent, "max_drawdown": _percent, "best_val_acc": _percent,
}


def format_record(key: str, value: Any) -> str:
    """Return a recorded value as the index shows it (see :data:`RECORD_FORMATS`)."""
    fmt = RECORD_FORMATS.get(key) or next(
        (f for suffix, f in RECORD_FORMATS.items() if suffix.startswith("_") and key.endswith(suffix)),
        None)
    if fmt and isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt(value)
    return _fmt(value)


def collect_reports(reports_root: Path = REPORTS_DIR) -> list[dict[str, Any]]:
    """Return every report's summary found under ``reports_root/<date>/``, newest date first."""
    found = []
    for doc_path in sorted(reports_root.glob("*/*.json"), reverse=True):
        if not doc_path.with_suffix(".ipynb").exists():
            continue  # bench results and other JSON are not notebook reports
        try:
            doc = json.loads(doc_path.read_text())
        except json.JSONDecodeError:
            continue
        doc["date"] = doc_path.parent.name
        doc["rel_html"] = f"{doc_path.parent.name}/{doc_path.stem}.html"
        doc["rel_ipynb"] = f"{doc_path.parent.name}/{doc_path.stem}.ipynb"
        found.append(doc)
    found.sort(key=lambda d: d.get("name", ""))
    found.sort(key=lambda d: d["date"], reverse=True)  # stable: names stay in order per date
    return found


def _extras(reports_root: Path) -> str:
    """Links to the overview chart and the benchmark results, when they exist."""
    links = []
    if (reports_root / "overview.png").exists():
        links.append("<li><a href='overview.png'>overview.png</a>: ETH/USDT candles with pivots</li>")
    for bench in sorted((reports_root / "bench").glob("*.json")):
        try:
            measured = json.loads(bench.read_text()).get("measured_at", "")
        except (json.JSONDecodeError, AttributeError):
            measured = "unreadable"
        links.append(f"<li><a href='bench/{html.escape(bench.name)}'>benchmark "
                     f"{html.escape(bench.stem)}</a> <small>{html.escape(str(measured))}</small></li>")
    return f"<ul>{''.join(links)}</ul>" if links else ""


def write_index(reports_root: Path = REPORTS_DIR) -> Path:
    """Write ``reports_root/index.html`` linking every report with its headline values, the
    overview chart and the benchmark results."""
    rows = []
    for doc in collect_reports(reports_root):
        records = doc.get("records", {})
        values = "<br>".join(f"{html.escape(k)} = {html.escape(format_record(k, v))}"
                             for k, v in records.items() if not isinstance(v, (dict, list)))
        status = html.escape(doc.get("status", "?"))
        error = f"<br><small>{html.escape(doc['error'])}</small>" if doc.get("error") else ""
        seconds = doc.get("seconds")
        rows.append(
            f"<tr class='{status}'><td>{html.escape(doc['date'])}</td>"
            f"<td><a href='{html.escape(doc['rel_html'])}'>{html.escape(doc.get('name', ''))}</a>"
            f" (<a href='{html.escape(doc['rel_ipynb'])}'>ipynb</a>)</td>"
            f"<td>{status}{error}</td><td>{'' if seconds is None else f'{seconds:.1f} s'}</td>"
            f"<td>{values}</td></tr>")
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    page = _INDEX_TEMPLATE.format(rows="\n".join(rows) or "<tr><td colspan=5>no reports</td></tr>",
                                  generated=generated, extras=_extras(Path(reports_root)))
    reports_root.mkdir(parents=True, exist_ok=True)
    index = reports_root / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


_INDEX_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Workbench reports</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}
tr.failed td{{background:#fdd}}</style></head>
<body><h1>Workbench notebook reports</h1><p>generated {generated}</p>
{extras}
<table><tr><th>date</th><th>report</th><th>status</th><th>run time</th><th>headline values</th></tr>
{rows}
</table></body></html>
"""
