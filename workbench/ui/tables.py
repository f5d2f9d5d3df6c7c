"""Tables people read: what notebooks and reports show instead of a raw polars frame or a repr.

A :class:`Table` renders as a plain HTML table (and as aligned text): no dtype row, no shape line,
no ``…`` cutting a key row, times as ``2025-06-01 14:03 UTC``, durations as ``2 d 03:15``,
percentages with ``%``. :func:`table` formats a frame column by column (epoch-ms ``ts`` columns
become UTC times automatically); :func:`key_values`, :func:`stats_table`, :func:`trades_table` and
:func:`params_table` build the tables the notebooks show most.
"""
from __future__ import annotations

import dataclasses
import html
import json
import math
from datetime import timedelta
from typing import Any, Callable, Mapping

import polars as pl

from workbench.units import human_duration, human_number, human_percent, human_time

#: named column formats for :func:`table` (a callable works as well)
FORMATS: dict[str, Callable[[Any], str]] = {
    "time": human_time,
    "duration_ms": lambda v: human_duration(None if v is None else timedelta(milliseconds=v)),
    "percent": human_percent,
    "fraction": lambda v: human_percent(v, fraction=True),
    "money": lambda v: human_number(v, unit="$"),
    "price": lambda v: human_number(v, digits=2),
    "int": lambda v: human_number(None if v is None else int(v)),
}


def readable(value: Any) -> str:
    """Return any cell value as text: numbers with separators, NaN/None ``n/a``, bools yes/no."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return human_number(value)
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,d}"
    if isinstance(value, timedelta):
        return human_duration(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(readable(v) for v in value)
    return str(getattr(value, "value", value))  # enums read as their value


@dataclasses.dataclass(frozen=True)
class Table:
    """Rows of text under column names, shown whole (notebooks call ``_repr_html_``)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
                       for row in self.rows) or (f"<tr><td colspan='{len(self.columns)}'>none"
                                                 "</td></tr>")
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (f"<table class='wb-table'>{caption}<thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")

    def __repr__(self) -> str:
        widths = [max([len(c)] + [len(r[i]) for r in self.rows])
                  for i, c in enumerate(self.columns)]
        lines = [self.caption] if self.caption else []
        lines += ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in self.rows]
        return "\n".join(lines)

    def cell(self, row: int, column: str) -> str:
        """Return the text in ``row`` under ``column``."""
        return self.rows[row][self.columns.index(column)]


def _column_format(name: str, dtype: pl.DataType, formats: Mapping) -> Callable[[Any], str]:
    spec = formats.get(name)
    if spec is None and (name == "ts" or name.endswith("_ts")) and dtype.is_integer():
        spec = "time"
    if spec is None and isinstance(dtype, pl.Datetime):
        spec = "time"
    if callable(spec):
        return spec
    return FORMATS[spec] if spec else readable


def table(frame: pl.DataFrame | list[dict], formats: Mapping | None = None, *,
          rename: Mapping[str, str] | None = None, caption: str = "") -> Table:
    """Return ``frame`` as a :class:`Table`, each column formatted for reading.

    Parameters
    ----------
    frame : a polars frame or a list of row dicts.
    formats : column -> a :data:`FORMATS` name or a callable; epoch-ms ``ts``/``*_ts`` columns and
        datetime columns default to UTC times, other values to :func:`readable`.
    rename : column -> the heading shown.
    caption : a line above the table.
    """
    frame = frame if isinstance(frame, pl.DataFrame) else pl.DataFrame(frame)
    formats, rename = formats or {}, rename or {}
    fns = [_column_format(c, frame.schema[c], formats) for c in frame.columns]
    rows = tuple(tuple(fn(v) for fn, v in zip(fns, row)) for row in frame.iter_rows())
    return Table(tuple(rename.get(c, c) for c in frame.columns), rows, caption)


def key_values(pairs: Mapping | list[tuple[str, Any]], *, caption: str = "",
               headings: tuple[str, str] = ("", "value")) -> Table:
    """Return ``(name, value)`` pairs as a two-column table; values that are not text read well.

    A nested mapping becomes ``outer.inner`` rows; an integer under a ``ts``/``*_ts`` name reads
    as a UTC time.
    """
    return Table(headings, tuple(_pairs(pairs, "")), caption)


def _pairs(pairs, prefix: str):
    for key, value in (pairs.items() if isinstance(pairs, Mapping) else pairs):
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _pairs(value, name + ".")
        elif isinstance(value, int) and not isinstance(value, bool) and (
                str(key) == "ts" or str(key).endswith("_ts")):
            yield name, human_time(value)
        else:
            yield name, value if isinstance(value, str) else readable(value)


def stats_table(stats, *, caption: str = "") -> Table:
    """The statistics block (backtesting.py's names, values with units) and how it annualises."""
    from workbench.backtest.stats import format_stats

    note = stats.annualisation.describe() if hasattr(stats, "annualisation") else ""
    return key_values(format_stats(stats), caption=caption or note,
                      headings=("statistic", "value"))


def trades_table(trades: pl.DataFrame, *, limit: int | None = None) -> Table:
    """The trade list a person reads: entry, exit (or open), side, duration, prices, PnL."""
    shown = trades.tail(limit) if limit else trades
    end = pl.col("exit_ts").fill_null(pl.col("entry_ts").max())
    frame = shown.select(
        pl.col("entry_ts").alias("entry"),
        pl.col("exit_ts").alias("exit"),
        "side",
        pl.when(pl.col("is_open")).then(None).otherwise(end - pl.col("entry_ts"))
        .alias("duration"),
        "entry_price", "exit_price", "pnl",
        (100 * pl.col("return_pct")).alias("pnl_pct"))
    out = table(frame, {"entry": "time", "exit": lambda v: "open" if v is None else human_time(v),
                        "duration": "duration_ms", "entry_price": "price",
                        "exit_price": "price", "pnl": "money", "pnl_pct": "percent"},
                rename={"entry_price": "entry price", "exit_price": "exit price",
                        "pnl": "PnL", "pnl_pct": "PnL %"})
    note = f"last {shown.height} of {trades.height} trades" if shown.height < trades.height \
        else f"{trades.height} trades"
    return dataclasses.replace(out, caption=note + " (times UTC; an open trade is marked at the "
                                                   "last close)")


def params_table(config: Any, *, caption: str = "parameters") -> Table:
    """A dataclass (a config) as ``name = value`` rows; nested ones flattened (``sim.fee``).

    ``start``/``end`` given as epoch ms read as UTC times; fees and slippage as percentages.
    """
    return key_values(list(_flat(config, "")), caption=caption, headings=("parameter", "value"))


def _flat(obj: Any, prefix: str):
    for f in dataclasses.fields(obj):
        value, name = getattr(obj, f.name), prefix + f.name
        if dataclasses.is_dataclass(value):
            yield from _flat(value, name + ".")
        elif f.name in ("start", "end") and isinstance(value, int):
            yield name, human_time(value)
        elif f.name in ("fee", "slippage") and isinstance(value, float):
            yield name, human_percent(value, fraction=True, digits=3)
        else:
            yield name, value


#: headings of the research tables' columns (:mod:`workbench.research.report`); a research
#: table's trade count includes a trade still open at the end, where the statistics block's
#: "# Trades" counts closed trades (backtesting.py's convention), hence "trades opened"; its
#: Sharpe is annualised from per-bar returns, the block's from daily returns (backtesting.py's)
RESEARCH_HEADINGS = {"name": "strategy", "return_pct": "return",
                     "sharpe": "Sharpe (annualised from bars)",
                     "max_drawdown": "max drawdown", "n_trades": "trades opened",
                     "oos_return": "OOS return",
                     "oos_sharpe": "OOS Sharpe (annualised from bars)",
                     "oos_max_drawdown": "OOS max drawdown", "value": "objective",
                     "params": "parameters"}


def research_table(frame: pl.DataFrame, *, caption: str = "") -> Table:
    """A baselines or leaderboard frame (``research.report.baselines_frame`` / ``leaderboard``)
    with readable headings.

    Returns read as percentages, drawdowns as negative percentages (as in the statistics block),
    parameters as ``key = value`` with 3 significant digits, and a missing value as ``n/a`` in
    every column.
    """
    formats: dict[str, Callable[[Any], str]] = {c: _or_na(readable) for c in frame.columns}
    for c in frame.columns:
        if c.endswith("drawdown"):
            # 0.0 - abs(v): no drawdown reads 0.00 %, not -0.00 %
            formats[c] = lambda v: human_percent(None if v is None else 0.0 - abs(v),
                                                 fraction=True)
        elif c.endswith(("return", "return_pct")):
            formats[c] = FORMATS["fraction"]
    if "params" in frame.columns:
        formats["params"] = _or_na(_params_text)
    return table(frame, formats, rename=RESEARCH_HEADINGS, caption=caption)


def _or_na(fn: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda v: "n/a" if v is None else fn(v)


def _params_text(params: str | Mapping) -> str:
    """``{"training.learning_rate": 0.0031234}`` (or its JSON) as ``training.learning_rate =
    0.00312``."""
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            return params
    if not isinstance(params, Mapping):
        return readable(params)
    return ", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {readable(v)}"
                     for k, v in params.items())
