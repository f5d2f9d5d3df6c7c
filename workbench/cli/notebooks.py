"""CLI commands of the notebooks part: ``workbench notebooks run`` and ``workbench dashboard``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Tuple

import typer

from workbench.cli import _common
from workbench.errors import WorkbenchError

notebooks_app = typer.Typer(help="Run the notebook suite headless (papermill) and index the reports.",
                            no_args_is_help=True)


def _split_args(args: List[str]) -> Tuple[List[str], dict]:
    """Split the free arguments into notebook names and ``-p KEY VALUE`` pairs."""
    names, params, i = [], {}, 0
    while i < len(args):
        if args[i] in ("-p", "--parameter"):
            if len(args) - i < 3:
                raise typer.BadParameter(f"{args[i]} needs KEY VALUE", param_hint="-p")
            params[args[i + 1]] = args[i + 2]
            i += 3
        elif args[i].startswith("-"):
            raise typer.BadParameter(f"unknown option {args[i]}")
        else:
            names.append(args[i])
            i += 1
    return names, params


# ``-p KEY VALUE`` takes two values and repeats, which typer cannot declare; it is parsed from
# the command's free arguments together with the notebook names.
@notebooks_app.command("run", context_settings={"allow_extra_args": True,
                                                "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    profile: str = typer.Option("ci", "--profile", help="Parameter profile: ci (cheap) or full."),
    reports: Path = typer.Option(None, "--reports", help="Reports folder (default: reports/)."),
    timeout: int = typer.Option(600, "--timeout", help="Per-cell execution timeout in seconds."),
    notebooks: Path = typer.Option(None, "--notebooks", help="Notebook folder (default: notebooks/)."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """Execute notebooks with papermill into reports/<date>/ (ipynb + HTML + JSON values).

    Usage: workbench notebooks run [NAMES...] [-p KEY VALUE ...] [--profile ci|full] [--json]

    NAMES default to the whole suite. -p KEY VALUE sets a notebook parameter (repeatable); it
    applies to every selected notebook that declares KEY. Exits 1 when any notebook fails.
    """
    names, parameter = _split_args(list(ctx.args))
    from workbench.paths import NOTEBOOKS_DIR, REPORTS_DIR
    from workbench.ui.notebooks import run_suite

    env = {"WORKBENCH_DB": str(_common.db_path())}
    log = None if as_json else typer.echo
    try:
        result = run_suite(names or None, overrides=parameter, profile=profile,
                           reports_root=reports or REPORTS_DIR, timeout=timeout, env=env, log=log,
                           notebooks_dir=notebooks or NOTEBOOKS_DIR)
    except WorkbenchError as exc:
        _common.fail(exc)
    _common.emit(result.to_dict(), as_json,
                 lambda r: typer.echo(f"reports: {r['out_dir']}\nindex:   {r['index']}"))
    if not result.ok:
        raise typer.Exit(1)


def dashboard(
    port: int = typer.Option(8866, "--port", help="Port to serve on (127.0.0.1 only)."),
    timeout: int = typer.Option(300, "--timeout", help="Per-cell executor timeout in seconds."),
    allow_host: List[str] = typer.Option(
        [], "--allow-host", help="Also accept requests for this host name (a proxy in front); "
                                 "repeatable. 127.0.0.1 and localhost are always accepted."),
) -> None:
    """Serve the control panel and the read-only report notebooks with Voila on 127.0.0.1."""
    from workbench.ui.dashboard import serve

    os.environ["WORKBENCH_DB"] = str(_common.db_path())  # --db wins over an inherited variable
    raise typer.Exit(serve(port=port, timeout=timeout, db=str(_common.db_path()),
                           allow_hosts=allow_host))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(notebooks_app, name="notebooks")
    app.command("dashboard")(dashboard)
