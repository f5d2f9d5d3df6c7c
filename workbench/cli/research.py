"""CLI commands of the research part: ``workbench evaluate`` and ``workbench sweep``.

``evaluate --config C --folds K [--scheme rolling|expanding] [--purge N] [--embargo N]
[--set k=v] [--quick] [--json]`` and ``sweep --config C --space SPACE.yaml --trials N
[--workers W] [--address RAY_ADDRESS] [--objective NAME] [--study ID] [--set k=v] [--json]``
(``docs/research.md``).
"""
from __future__ import annotations

from typing import List, Optional

import typer

from workbench.cli import _common
from workbench.errors import WorkbenchError

_CONFIG = typer.Option(None, "--config", "-c", help="YAML training config.")
_SET = typer.Option([], "--set", help="Override a config key: section.key=value.")
_QUICK = typer.Option(False, "--quick", help="Tiny model and data (the train --quick preset).")
_FOLDS = typer.Option(3, "--folds", help="Walk-forward folds.")
_SCHEME = typer.Option("rolling", "--scheme", help="rolling or expanding training windows.")
_PURGE = typer.Option(None, "--purge", help="Rows between training and test (default: window "
                                            "+ label horizon, the minimum).")
_EMBARGO = typer.Option(0, "--embargo", help="Rows skipped after each test window.")
_DRAWS = typer.Option(100, "--draws", help="Random-entry baseline draws (>= 100 advised).")


def _spec(folds, scheme, purge, embargo, draws):
    from workbench.research.evaluate import EvaluateSpec

    return EvaluateSpec(folds=folds, scheme=scheme, purge=purge, embargo=embargo, draws=draws)


def _fmt(v) -> str:
    return f"{v:+.4f}" if isinstance(v, float) else str(v)


def _print_evaluation(s: dict) -> None:
    typer.echo(f"evaluation {s['evaluation_id']}  {s['symbol']} {s['timeframe']}  "
               f"{len(s['folds'])} folds ({s['scheme']}, purge {s['purge']})")
    for f in s["folds"]:
        typer.echo(f"  fold {f['fold']}  run {f['run_id']}  return {_fmt(f['return_pct'])}  "
                   f"sharpe {_fmt(f['sharpe'])}  trades {f['n_trades']}  "
                   f"buy&hold {_fmt(f['buy_hold_return'])}")
    _print_baselines(s["baselines"])
    oos = s["oos"]
    typer.echo(f"  OOS hit rate {_ci(oos, 'hit_rate')}; per-bar Sharpe "
               f"{_ci(oos, 'sharpe_per_bar')}")
    typer.echo(s["verdict"])


def _ci(oos: dict, key: str) -> str:
    lo, hi = oos[f"{key}_ci"]
    if oos[key] is None or lo is None:
        return "n/a (no moves to count)"
    return f"{oos[key]:.4f} (95% CI {lo:.4f}..{hi:.4f})"


def _print_baselines(table: dict) -> None:
    from workbench.research.baselines import LABELS, RANDOM, SHOWN

    typer.echo(f"  {'':<24}" + "".join(f"{k:>14}" for k in SHOWN))
    for name in ("model", *LABELS):
        row = table[name]
        typer.echo(f"  {LABELS.get(name, name):<24}" + "".join(f"{_fmt(row[k]):>14}"
                                                                for k in SHOWN))
    rnd = table[RANDOM]
    typer.echo(f"  {'random entries':<24}{_fmt(rnd['return_pct']):>14}  mean of {rnd['draws']} "
               f"draws; model percentile {rnd['model_percentile']:.0f}")


def evaluate_cmd(config: Optional[str] = _CONFIG, overrides: List[str] = _SET,
                 quick: bool = _QUICK, folds: int = _FOLDS, scheme: str = _SCHEME,
                 purge: Optional[int] = _PURGE, embargo: int = _EMBARGO, draws: int = _DRAWS,
                 as_json: bool = _common.JSON_OPTION) -> None:
    """Walk-forward evaluation: a fresh run per fold, out-of-sample backtests, baselines."""
    from workbench.cli.train import _quiet_console
    from workbench.research.evaluate import evaluate
    from workbench.train.config import load_config

    try:
        cfg = load_config(config, list(overrides), quick=quick)
        cfg.data.db = cfg.data.db or str(_common.db_path())
        cfg.callbacks.progress = False
        _quiet_console()
        summary = evaluate(cfg, _spec(folds, scheme, purge, embargo, draws), _common.store(),
                           db=_common.db_path())
    except WorkbenchError as exc:
        _common.fail(exc)
    summary.pop("oos_returns")
    _common.emit(summary, as_json, _print_evaluation)


def sweep_cmd(config: Optional[str] = _CONFIG, overrides: List[str] = _SET, quick: bool = _QUICK,
              space: str = typer.Option(..., "--space", help="SPACE.yaml: key -> range/choices."),
              trials: int = typer.Option(..., "--trials", help="Trials (in total, on resume)."),
              workers: int = typer.Option(1, "--workers", help="Trials run at once (Ray)."),
              address: Optional[str] = typer.Option(None, "--address",
                                                    help="Join this Ray cluster (host:port)."),
              objective: str = typer.Option("oos_sharpe", "--objective",
                                            help="oos_sharpe, oos_return or val_loss."),
              study: Optional[str] = typer.Option(None, "--study", metavar="SWEEP_ID",
                                                  help="Resume this sweep."),
              sampler: str = typer.Option("tpe", "--sampler", help="tpe or random."),
              prune: bool = typer.Option(True, "--prune/--no-prune", help="Median pruning."),
              folds: int = _FOLDS, scheme: str = _SCHEME, purge: Optional[int] = _PURGE,
              embargo: int = _EMBARGO, draws: int = _DRAWS,
              as_json: bool = _common.JSON_OPTION) -> None:
    """Search a space with Optuna, trials as Ray tasks; DSR and PBO of the result."""
    from workbench.cli.train import _quiet_console
    from workbench.research.space import check_space, load_space
    from workbench.research.sweep import SweepSpec, sweep
    from workbench.train.config import config_from_dict, merge_overrides, read_yaml

    try:
        raw = merge_overrides(read_yaml(config) if config else {},
                              [*overrides, "callbacks.progress=false"], quick=quick)
        config_from_dict(raw)
        dims = load_space(space)
        check_space(dims, raw, f"space file {space}")
        spec = SweepSpec(trials=trials, workers=workers, address=address, objective=objective,
                         sampler=sampler, prune=prune,
                         evaluation=_spec(folds, scheme, purge, embargo, draws))
        _quiet_console()
        out = sweep(raw, dims, spec, _common.store(), sweep_id=study)
    except WorkbenchError as exc:
        _common.fail(exc)
    _common.emit(out, as_json, _print_sweep)


def _print_sweep(s: dict) -> None:
    typer.echo(f"sweep {s['sweep_id']}: {s['n_trials']} trials, objective {s['objective']} "
               f"({s['direction']})")
    for t in s["trials"]:
        typer.echo(f"  trial {t['trial']:>3} {t['state']:<9} value {_fmt(t['value'])}  "
                   f"{t['params']}")
    typer.echo(f"best trial {s['best_trial']}: {s['best_params']} -> {_fmt(s['best_value'])}")
    typer.echo(f"deflated Sharpe {s['deflated_sharpe']}, PBO {s['pbo']}")
    for line in (s.get("luck"), s.get("verdict"), *s.get("notes", [])):
        if line:
            typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``sweep`` to the root app."""
    app.command("evaluate")(evaluate_cmd)
    app.command("sweep")(sweep_cmd)
