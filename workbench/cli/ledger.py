"""``workbench ledger``: the prediction ledger of live sessions and replays."""
from __future__ import annotations

import typer

from workbench.actions import HOLD_BAND
from workbench.cli import _common
from workbench.errors import WorkbenchError

ledger_app = typer.Typer(help="Prediction ledger: hit rates, calibration, candle error.",
                         no_args_is_help=True)


def _print_table(title: str, rows: list[dict]) -> None:
    typer.echo(f"\n{title}")
    if not rows:
        typer.echo("  (no rows with a known outcome)")
        return
    cols = list(rows[0])
    cells = [[_fmt(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    typer.echo("  " + "  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for row in cells:
        typer.echo("  " + "  ".join(v.rjust(w) for v, w in zip(row, widths)))


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _human(summary: dict) -> None:
    scope = summary["run_id"] or "all runs"
    typer.echo(f"prediction ledger, {scope}: {summary['rows']} rows "
               f"(HOLD band ±{summary['hold_band']}%)")
    _print_table("hit rate per predicted action", summary["hit_rate"])
    _print_table("calibration (confidence bucket vs realised accuracy)", summary["calibration"])
    _print_table("predicted-candle error (percent points)", summary["candle_error"])
    if summary.get("baselines"):
        typer.echo("\n" + summary["baselines"]["verdict"])


@ledger_app.command("summary")
def summary(run: str = typer.Option(None, "--run", metavar="RUN_ID", help="Only this run."),
            hold_band: float = typer.Option(HOLD_BAND, "--hold-band",
                                            help="Percent band in which a move counts as HOLD."),
            as_json: bool = _common.JSON_OPTION) -> None:
    """Per model version: hit rate per action, calibration and predicted-candle error."""
    from workbench.live.ledger import ledger_summary
    from workbench.research.baselines import ledger_baselines

    try:
        store = _common.store()
        payload = ledger_summary(store, run, hold_band=hold_band)
        payload["baselines"] = ledger_baselines(store.read_ledger(run), hold_band)
    except WorkbenchError as exc:
        _common.fail(exc)
    _common.emit(payload, as_json, _human)


def register(app: typer.Typer) -> None:
    """Add ``workbench ledger ...`` to the root app."""
    app.add_typer(ledger_app, name="ledger")
