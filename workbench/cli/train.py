"""CLI commands of the torch training engine.

``workbench train --config FILE [--set k=v ...] [--quick] [--resume RUN_ID] [--json]``,
``workbench runs list|show RUN_ID|pin RUN_ID [--json]`` and ``workbench export onnx RUN_ID [--json]``.
"""
from __future__ import annotations

import logging
from typing import List, Optional

import typer

from workbench.cli import _common
from workbench.errors import WorkbenchError

runs_app = typer.Typer(help="List and inspect training runs.", no_args_is_help=True)
export_app = typer.Typer(help="Export a trained run.", no_args_is_help=True)


def _quiet_console() -> None:
    """Keep Lightning's info chatter in logs/training.log, off the terminal."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.WARNING)


def _short(metrics: dict | None, keys=("val_loss", "val_rmse", "val_acc", "val_f1")) -> str:
    metrics = metrics or {}
    return " ".join(f"{k}={metrics[k]:.5g}" for k in keys if metrics.get(k) is not None)


def train_cmd(
    config: Optional[str] = typer.Option(None, "--config", "-c", help="YAML config file."),
    overrides: List[str] = typer.Option([], "--set", help="Override a key: section.key=value."),
    quick: bool = typer.Option(False, "--quick", help="Tiny model and data: done in < 1 min."),
    resume: Optional[str] = typer.Option(None, "--resume", metavar="RUN_ID",
                                         help="Continue a run from its last.ckpt."),
    draws: int = typer.Option(100, "--draws", help="Random-entry baseline draws of the test "
                                                    "report."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """Train a torch model (transformer or lstm) and write a run folder; its test report puts
    the model's backtest on the test split beside the baselines."""
    from workbench.train.config import load_config

    try:
        cfg = None
        if resume is None:
            cfg = load_config(config, list(overrides), quick=quick)
            if cfg.data.db is None:  # the store of --db / $WORKBENCH_DB, frozen into the run
                cfg.data.db = str(_common.db_path())
        from workbench.train.runs import train  # torch + Lightning: only for a valid config

        _quiet_console()
        record = train(cfg, resume=resume, db=_common.db_path())
        if record.get("status") is None:  # a DDP worker process: rank 0 reports the run
            return
        from workbench.research.training_report import attach_training_report

        record = attach_training_report(record, _common.store(), db=_common.db_path(),
                                        draws=draws)
    except WorkbenchError as exc:
        _common.fail(exc)
    _common.emit(record, as_json, _print_run)


def _print_run(r: dict) -> None:
    typer.echo(f"run {r['run_id']} {r['status']}: {r.get('epochs_run')} epochs, best epoch "
               f"{r.get('best_epoch')}; best {_short(r.get('best_metrics'))}")
    report = r.get("test_report")
    if report:
        typer.echo(f"test split ({report['n_bars']} candles): {report['verdict']}")


@runs_app.command("list")
def runs_list(as_json: bool = _common.JSON_OPTION) -> None:
    """List training runs, newest first."""
    from workbench.runs import list_runs  # no torch: a listing starts in a second

    rows = list_runs(_common.db_path())

    def human(rows):
        if not rows:
            typer.echo("no runs")
        for r in rows:
            parent = f"parent {r['parent_run_id']}" if r.get("parent_run_id") else ""
            typer.echo(f"{r['run_id']:<48} {r.get('status', '?'):<10} "
                       f"{r.get('model_type', '?'):<12} {_short(r.get('best_metrics'))} {parent}"
                       .rstrip())
    _common.emit(rows, as_json, human)


@runs_app.command("show")
def runs_show(run_id: str = typer.Argument(..., help="The run id."),
              as_json: bool = _common.JSON_OPTION) -> None:
    """Show one run: status, times, metrics per epoch, artifacts."""
    from workbench.runs import show_run

    try:
        record = show_run(run_id, _common.db_path())
    except WorkbenchError as exc:
        _common.fail(exc)

    def human(r):
        for key in ("run_id", "status", "model_type", "parent_run_id", "session_id", "mode",
                    "training_steps", "created_at", "started_at", "ended_at", "best_epoch",
                    "error"):
            if r.get(key) is not None:
                typer.echo(f"{key:<12} {r[key]}")
        for e in r.get("epochs", []):
            typer.echo(f"  epoch {e['epoch']:>3}: {_short(e, ('train_loss', 'val_loss', 'val_rmse', 'val_acc'))}")
        typer.echo("artifacts    " + ", ".join(r.get("artifacts", [])))
    _common.emit(record, as_json, human)


@runs_app.command("pin")
def runs_pin(run_id: str = typer.Argument(..., help="The run id."),
             as_json: bool = _common.JSON_OPTION) -> None:
    """Choose the run report pages show by default (instead of the newest completed one)."""
    from workbench.runs import pin_report_run

    try:
        marker = pin_report_run(run_id, _common.db_path())
    except WorkbenchError as exc:
        _common.fail(exc)
    _common.emit(marker, as_json, lambda m: typer.echo(f"reports show run {m['run_id']}"))


@export_app.command("onnx")
def export_onnx_cmd(run_id: str = typer.Argument(..., help="The run id."),
                    as_json: bool = _common.JSON_OPTION) -> None:
    """Export a run's best model to ONNX and check parity in onnxruntime."""
    from workbench.train.export import export_onnx

    try:
        result = export_onnx(run_id, db=_common.db_path())
    except WorkbenchError as exc:
        _common.fail(exc)
    _common.emit(result, as_json, lambda r: typer.echo(
        f"wrote {r['path']}; onnxruntime max abs diff {r['max_abs_diff']:.3g} on a batch of "
        f"{r['batch']} (tolerance {r['tolerance']:g})"))


def register(app: typer.Typer) -> None:
    """Add ``train``, ``runs`` and ``export`` to the root app."""
    app.command("train")(train_cmd)
    app.add_typer(runs_app, name="runs")
    app.add_typer(export_app, name="export")
