"""Helpers shared by the CLI modules: the resolved database, JSON output, error reporting."""
from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any, Callable

import typer

from workbench.errors import WorkbenchError
from workbench.paths import resolve_db_path
from workbench.units import finite_or_none

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
    if hasattr(o, "tolist"):  # numpy scalars and arrays
        return jsonable(o.tolist())
    if isinstance(o, Decimal):
        return int(o) if o == o.to_integral_value() else jsonable(float(o))
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return str(o)


jsonable = finite_or_none  # NaN/inf -> None, recursively (workbench.units)


def emit(payload: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print ``payload`` as one strict JSON document when ``as_json``, else ``human(payload)``."""
    if as_json:
        text = json.dumps(jsonable(payload), default=_default, indent=2, allow_nan=False)
        sys.stdout.write(text + "\n")
    else:
        human(payload)


def error_line(message: str) -> None:
    """Print ``error: message`` as one red line on stderr (inner line breaks become spaces)."""
    typer.secho(f"error: {' '.join(str(message).split())}", fg=typer.colors.RED, err=True)


def fail(exc: WorkbenchError) -> None:
    """Print a WorkbenchError as one red line on stderr and exit with status 2."""
    error_line(str(exc))
    raise typer.Exit(2)
