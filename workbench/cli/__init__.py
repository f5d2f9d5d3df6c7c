"""The ``workbench`` command.

Each part of the system registers its own commands from a module of this package
(``data``, ``train``, ``pricemodel``, ``live``, ``backtest``, ``notebooks``); this module only
builds the root app, owns the global ``--db`` option and turns :class:`WorkbenchError` into a
clear one-line message with exit status 2.
"""
from __future__ import annotations

import sys

import typer

from workbench.cli import _common
from workbench.errors import WorkbenchError

app = typer.Typer(
    name="workbench",
    help="Quant research workbench: data, pivots, training engines, live modes, backtests, notebooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    db: str = typer.Option(None, "--db", metavar="PATH",
                           help="DuckDB file (default: $WORKBENCH_DB, then data/workbench.duckdb)."),
) -> None:
    """Quant research workbench."""
    _common.set_db(db)


def _register_all() -> None:
    from workbench.cli import (backtest, data, ledger, live, notebooks, pricemodel, research,
                               train)

    for module in (data, train, pricemodel, ledger, live, backtest, research, notebooks):
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script; exits 2 with a clear message on a WorkbenchError."""
    try:
        app(args=argv, standalone_mode=True)
    except WorkbenchError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
