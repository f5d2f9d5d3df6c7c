"""The ledger page (notebook 06): tables per run and per session, a reliability diagram, hit rate
over time; readable however many model versions a session published.

:func:`ledger_view` reads the ledger once and aggregates it with
:mod:`workbench.live.ledger_report`; the figures draw one line per run or session (the latest
:data:`MAX_LINES` of them), never one per model version, so 300 versions still make one legend
entry per session.
"""
from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
import polars as pl

from workbench.actions import HOLD_BAND
from workbench.live import ledger_report as lr
from workbench.ui import plots, tables

MAX_LINES = 10
_COLOURS = ("#1565c0", "#ef6c00", "#2e7d32", "#c62828", "#6a1b9a", "#00838f", "#5d4037",
            "#ad1457", "#9e9d24", "#455a64")


@dataclass(frozen=True)
class LedgerView:
    """The ledger rows with known outcomes and what the page shows of them."""

    rows: pl.DataFrame  # scored rows (realised_action, hit)
    group: str  # the column the lines follow: session_id, else run_id
    per_run: pl.DataFrame
    per_session: pl.DataFrame
    per_action: pl.DataFrame
    reliability: pl.DataFrame
    over_time: pl.DataFrame


def ledger_view(store, run_id: str | None = None, *, hold_band: float = HOLD_BAND,
                buckets: int = lr.MAX_BUCKETS, bins: int = 20) -> LedgerView:
    """Read the ledger (of one run, or all) and aggregate it for the page."""
    rows = lr.scored(store.read_ledger(run_id), hold_band)
    group = "session_id" if "session_id" in rows.columns else lr.group_columns(rows)[0]
    return LedgerView(rows=rows, group=group, per_run=lr.summary_by(rows, "run_id"),
                      per_session=lr.summary_by(rows, group), per_action=lr.by_action(rows),
                      reliability=lr.reliability(rows, group, buckets),
                      over_time=lr.hit_rate_over_time(rows, group, bins))


def summary_table(summary: pl.DataFrame, by: str, *, caption: str = "") -> tables.Table:
    """A per-run or per-session summary as a readable table (hit rate in %, UTC times)."""
    frame = summary.select(
        by, "n", "hits", "hit_rate", "mean_confidence", "mae_close", "first_ts", "last_ts",
        pl.format("v{}–v{}", "first_version", "last_version").alias("model versions"),
        "versions")
    return tables.table(frame, {"hit_rate": "fraction", "mean_confidence": "fraction",
                                "mae_close": lambda v: tables.readable(v) + " pp"},
                        rename={by: by.replace("_id", ""), "n": "frames", "hit_rate": "hit rate",
                                "mean_confidence": "mean confidence",
                                "mae_close": "MAE close", "first_ts": "first prediction",
                                "last_ts": "last prediction"}, caption=caption)


def _latest(view_order: list, limit: int) -> tuple[list, str]:
    shown = view_order[-limit:]
    note = f" (latest {len(shown)} of {len(view_order)})" if len(view_order) > limit else ""
    return shown, note


def _label(value) -> str:
    text = str(value)
    return text if len(text) <= 34 else "…" + text[-33:]


def reliability_figure(view: LedgerView, *, max_lines: int = MAX_LINES,
                       title: str = "") -> go.Figure:
    """Realised accuracy against confidence, one line per session (or run), ≤ 10 buckets."""
    groups, note = _latest(view.per_session[view.group].to_list(), max_lines)
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                               line=dict(color="#9e9e9e", dash="dot")))
    for i, g in enumerate(groups):
        sel = view.reliability.filter(pl.col(view.group) == g)
        fig.add_trace(go.Scatter(
            x=sel["mean_confidence"].to_numpy(), y=sel["accuracy"].to_numpy(),
            mode="lines+markers", name=_label(g), customdata=sel["n"].to_numpy(),
            line=dict(color=_COLOURS[i % len(_COLOURS)], width=1.6),
            marker=dict(size=(4 + sel["n"].to_numpy() ** 0.5).clip(4, 16)),
            hovertemplate="confidence %{x:.0%}: accuracy %{y:.0%} (%{customdata} frames)"
                          "<extra>%{fullData.name}</extra>"))
    fig.update_layout(title=(title or "Reliability") + note, template="plotly_white",
                      height=460, xaxis=dict(title="confidence", range=[0, 1], tickformat=".0%"),
                      yaxis=dict(title="realised accuracy", range=[0, 1], tickformat=".0%"),
                      legend=dict(title=view.group.replace("_id", ""), font=dict(size=10)))
    return fig


def hit_rate_figure(view: LedgerView, *, max_lines: int = MAX_LINES,
                    title: str = "") -> go.Figure:
    """Hit rate over time, one line per session (or run)."""
    groups, note = _latest(view.per_session[view.group].to_list(), max_lines)
    fig = go.Figure()
    for i, g in enumerate(groups):
        sel = view.over_time.filter(pl.col(view.group) == g)
        fig.add_trace(go.Scatter(
            x=plots.to_datetime(sel["ts"]), y=sel["hit_rate"].to_numpy(), mode="lines+markers",
            name=_label(g), customdata=sel["n"].to_numpy(),
            line=dict(color=_COLOURS[i % len(_COLOURS)], width=1.6), marker=dict(size=5),
            hovertemplate="%{x|%Y-%m-%d %H:%M UTC}: %{y:.0%} of %{customdata} frames"
                          "<extra>%{fullData.name}</extra>"))
    fig.update_layout(title=(title or "Hit rate over time") + note, template="plotly_white",
                      height=380, yaxis=dict(title="hit rate", range=[0, 1], tickformat=".0%"),
                      xaxis=dict(title="prediction time (UTC)", hoverformat="%Y-%m-%d %H:%M"),
                      legend=dict(title=view.group.replace("_id", ""), font=dict(size=10)))
    return fig
