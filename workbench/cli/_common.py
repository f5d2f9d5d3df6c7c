"""Helpers shared by the CLI modules: the resolved database, JSON output, error reporting."""
from __future__ import annotations

import json
import sys
from typing import Any, Callable

import typer

from workbench.errors import WorkbenchError
from workbench.paths import resolve_db_path

_state: dict[str, Any] = {"db": None}

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead of text.")


def set_db(db: str | None) -> None:
    """Remember the global ``--db`` option."""
    _state["db"] = db


def db_path():
    """Return the database path chosen by ``--db``, ``$WORKBENCH_DB`` or the default."""
    return resolve_db_path(_state["db"])


def store():
    """Return a :class:`workbench.data.store.Store` on the chosen database."""
    from workbench.data.store import Store

    return Store(db_path())


def _default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return str(o)


def emit(payload: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print ``payload`` as JSON when ``as_json``, else call ``human(payload)``."""
    if as_json:
        sys.stdout.write(json.dumps(payload, default=_default, indent=2) + "\n")
    else:
        human(payload)


def fail(exc: WorkbenchError) -> None:
    """Print a WorkbenchError as one red line on stderr and exit with status 2."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)
