"""Paper trading: a live session's signals applied as the backtest would, kept in DuckDB.

A :class:`PaperBroker` follows one :class:`~workbench.live.session.LiveSession` (it is an update
hook) and turns each closed candle's signal into market orders, fills, a position and an equity
curve with :class:`~workbench.backtest.simulate.SimStepper`, the incremental form of the backtest
simulator: same fill rule (next open, or the bar's own close), fee, slippage and sizing. Over the
same candles and signals its trades and equity therefore equal the backtest's, bit for bit
(``tests/live/test_paper.py``).

What it keeps, through the store (tables ``paper_orders``, ``paper_fills``, ``paper_equity``,
``paper_positions``; batched, ``flush_every`` candles per transaction and at :meth:`close`):

* an **order** when the wanted position changes (``side`` BUY/SELL, the wanted ``direction``),
  ``pending`` until it fills, then ``filled`` with its fill time;
* a **fill** per position change: units traded, position after, price (slippage in), fee;
* an **equity** row per candle: close, cash, position, entry price, unrealised PnL, equity;
* the open **position** of the session (one row, replaced at each flush).

:meth:`PaperBroker.view` (in-process) and :func:`paper_view` (from the store, any process) give
a panel what it shows: position, entry price, unrealised PnL and the paper equity curve.
"""
from __future__ import annotations

import threading
from collections import deque

import numpy as np
import polars as pl

from workbench.backtest.simulate import SimConfig, SimResult, SimStepper
from workbench.data.store import PAPER_COLUMNS


class PaperBroker:
    """Paper trading of one session's signals (see the module docstring).

    Parameters
    ----------
    store : the Store the orders, fills, equity and position are written to.
    session_id, symbol, timeframe : which session and series the rows belong to.
    config : the simulator conventions (the session's ``SessionConfig.sim``).
    run_id : the model's run, kept with the position row.
    flush_every : candles between two writes (a crash loses at most this many rows).
    keep : recent equity points held in memory for :meth:`view`.
    """

    def __init__(self, store, session_id: str, symbol: str, timeframe: str,
                 config: SimConfig | None = None, *, run_id: str | None = None,
                 flush_every: int = 64, keep: int = 2000):
        self.store, self.session_id = store, session_id
        self.symbol, self.timeframe, self.run_id = symbol, timeframe, run_id
        self.stepper = SimStepper(config)
        self.flush_every = flush_every
        self.ts: list[int] = []
        self._pending = {k: [] for k in ("orders", "fills", "equity")}
        self._open_order: dict | None = None
        self._orders = self._fills = 0
        self._entry_price: float | None = None
        self._recent = deque(maxlen=keep)
        self._guard = threading.Lock()

    @classmethod
    def attach(cls, session, **kwargs) -> "PaperBroker":
        """Follow ``session``: every closed candle's signal goes through the broker."""
        broker = cls(session.store, session.session_id, session.symbol, session.timeframe,
                     session.config.sim, run_id=session.handle.run_id, **kwargs)
        session.add_update_hook(broker._on_update)
        return broker

    def _on_update(self, session, info: dict) -> None:
        o, c = session.series.ohlcv[info["index"], [0, 3]].tolist()
        pred = info["prediction"]
        self.on_bar(info["ts"], o, c, pred["signal"] if pred else 0)

    # -- one candle ----------------------------------------------------------------------------
    def on_bar(self, ts: int, open_: float, close: float, signal: int) -> float:
        """Apply the signal decided at the close of candle ``ts``; return the equity."""
        step = self.stepper
        before = step.fills
        equity = step.on_bar(open_, close, signal)
        for bar, direction, units, traded, px, fee in step.fill_rows[before:]:
            self._record_fill(ts, direction, units, traded, px, fee)
        if step.target != step.held and self._open_order is None:
            self._place(ts, step.target)
        position = step.units
        unrealised = position * (close - self._entry_price) if position else 0.0
        row = (self.session_id, int(ts), float(close), float(step.cash), float(position),
               self._entry_price, float(unrealised), float(equity))
        with self._guard:
            self.ts.append(int(ts))
            self._pending["equity"].append(row)
            self._recent.append((int(ts), float(equity)))
        if len(self._pending["equity"]) >= self.flush_every:
            self.flush()
        return equity

    def _place(self, ts: int, direction: int) -> dict:
        self._orders += 1
        side = "BUY" if direction > self.stepper.held else "SELL"
        self._open_order = {"order_id": self._orders, "placed_ts": int(ts), "side": side,
                            "direction": int(direction)}
        self._pending["orders"].append(self._order_row("pending", None))
        return self._open_order

    def _order_row(self, status: str, fill_ts) -> tuple:
        o = self._open_order
        return (self.session_id, o["order_id"], self.symbol, self.timeframe, o["placed_ts"],
                o["side"], o["direction"], status, fill_ts)

    def _record_fill(self, ts, direction, units, traded, px, fee) -> None:
        if self._open_order is None:  # fill at the bar's own close: placed and filled at once
            self._place(ts, direction)
        self._pending["orders"].append(self._order_row("filled", int(ts)))
        self._fills += 1
        self._pending["fills"].append((self.session_id, self._fills,
                                       self._open_order["order_id"], int(ts), float(traded),
                                       float(units), float(px), float(fee)))
        self._entry_price = float(px) if units else None
        self._open_order = None

    # -- storage and views ---------------------------------------------------------------------
    def flush(self) -> int:
        """Write the buffered rows and the position in one transaction; return rows written."""
        with self._guard:
            pending = {k: v for k, v in self._pending.items()}
            self._pending = {k: [] for k in pending}
        frames = {k: pl.DataFrame(rows, schema=list(PAPER_COLUMNS[k]), orient="row")
                  for k, rows in pending.items() if rows}
        if "orders" in frames:  # an order placed and filled in one batch: its last state
            frames["orders"] = frames["orders"].unique("order_id", keep="last",
                                                       maintain_order=True)
        if self.ts:
            frames["positions"] = pl.DataFrame([self._position_row()],
                                               schema=list(PAPER_COLUMNS["positions"]),
                                               orient="row")
        try:
            return self.store.write_paper(frames)
        except BaseException:  # keep the rows for the next flush
            with self._guard:
                for k, rows in pending.items():
                    self._pending[k][:0] = rows
            raise

    def close(self) -> int:
        """Flush what is buffered (call when the session ends)."""
        return self.flush()

    def _position_row(self) -> tuple:
        v = self.view(curve=False)
        return (self.session_id, self.symbol, self.timeframe, self.run_id, v["ts"],
                v["position"], v["entry_price"], v["mark_price"], v["unrealised_pnl"],
                v["cash"], v["equity"], v["fills"], v["fees"])

    def view(self, curve: bool = True) -> dict:
        """What a panel shows: position, entry price, unrealised PnL, equity (+ curve)."""
        step = self.stepper
        mark = step.last_close
        unrealised = step.units * (mark - self._entry_price) if step.units else 0.0
        out = {"session_id": self.session_id, "ts": self.ts[-1] if self.ts else None,
               "position": step.units, "entry_price": self._entry_price, "mark_price": mark,
               "unrealised_pnl": unrealised, "cash": step.cash, "equity": step.equity,
               "fills": step.fills, "fees": step.fees,
               "open_order": dict(self._open_order) if self._open_order else None}
        if curve:
            with self._guard:
                out["equity_curve"] = list(self._recent)
        return out

    def result(self) -> tuple[np.ndarray, SimResult]:
        """``(candle ts, SimResult)`` of the candles so far, as the backtest reports them."""
        return np.array(self.ts, dtype=np.int64), self.stepper.result()


def paper_view(store, session_id: str) -> dict:
    """A panel's view of a paper session read from the store (works from another process):
    ``position`` (the row of ``paper_positions`` or None), ``equity`` (ts, equity, position,
    unrealised_pnl frame) and the ``fills`` frame."""
    pos = store.read_paper("positions", session_id)
    equity = store.read_paper("equity", session_id)
    return {"position": pos.row(0, named=True) if pos.height else None,
            "equity": equity.select("ts", "equity", "position", "unrealised_pnl"),
            "fills": store.read_paper("fills", session_id)}
