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
    from workbench.cli import (backtest, data, exchange, ledger, live, notebooks, pricemodel,
                               research, train)

    for module in (data, train, pricemodel, ledger, live, exchange, backtest, research, notebooks):
        module.register(app)


_register_all()


def _usage_error(exc: typer.TyperException) -> int:
    """Print a command-line usage error (unknown option, wrong type...) as one line."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as before
        exc.show()
        return exc.exit_code
    where = f"{ctx.command_path}: " if ctx is not None else ""
    hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    _common.error_line(f"{where}{exc.format_message()}{hint}")
    return exc.exit_code


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script.

    Every user error ends the same way: one line ``error: ...`` on stderr and exit status 2,
    whether the command line is malformed (unknown option, wrong type, missing argument) or a
    command raised a :class:`WorkbenchError`. stdout keeps only results.
    """
    from workbench.ui.kernel_startup import quiet_warnings

    quiet_warnings()
    args = list(sys.argv[1:] if argv is None else argv) or ["--help"]
    try:
        code = app(args=args, standalone_mode=False, prog_name="workbench")
    except typer.TyperException as exc:
        code = _usage_error(exc)
    except WorkbenchError as exc:
        _common.error_line(str(exc))
        code = 2
    except (typer.Abort, KeyboardInterrupt):
        _common.error_line("aborted")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
