"""PnL tracking of a live session: the backtest simulator's conventions, one bar at a time.

:class:`PnLTracker` is the incremental twin of :func:`workbench.backtest.simulate.simulate`: a
signal is an action (BUY = be long, SELL = be short or flat when long-only, HOLD = keep), a
decision fills at the next bar's open (or at its own close), each fill pays the fee, and equity is
cash plus the position marked at each close. Feeding it a session's signals gives, bar for bar,
the equity the backtest reports for the same signals (tests/live/test_session.py).
"""
from __future__ import annotations

import numpy as np

from workbench.backtest.simulate import SimConfig


class PnLTracker:
    """Incremental twin of :func:`workbench.backtest.simulate.simulate` for one live session.

    Feed :meth:`on_bar` each closed candle with its signal; the equity after each call equals the
    simulator's equity at that bar for the same signals (fixed size; fraction sizing without
    slippage), which the tests check.
    """

    def __init__(self, config: SimConfig | None = None):
        self.cfg = config or SimConfig()
        self.cash, self.units, self.held = self.cfg.cash, 0.0, 0
        self.target, self.fills, self.fees = 0, 0, 0.0
        self.equity = self.cfg.cash

    def _fill(self, direction: int, price: float) -> None:
        cfg = self.cfg
        if cfg.size_mode == "fixed":
            units = direction * float(cfg.size)
        else:
            exit_px = price * (1.0 - cfg.slippage * self.held)
            flat = self.cash + self.units * exit_px - cfg.fee * abs(self.units) * exit_px
            entry = price * (1.0 + cfg.slippage * direction)
            units = direction * cfg.size * flat / (entry * (1.0 + cfg.fee))
        traded = units - self.units
        px = price * (1.0 + cfg.slippage * np.sign(traded))
        fee = cfg.fee * abs(traded) * px
        self.cash += -traded * px - fee
        self.units, self.held = units, direction
        self.fills += 1
        self.fees += fee

    def on_bar(self, open_: float, close: float, signal: int) -> float:
        """Process one closed bar and the signal decided at its close; return the equity."""
        next_open = self.cfg.fill == "next_open"
        if next_open and self.target != self.held:
            self._fill(self.target, open_)
        if signal:
            self.target = max(signal, 0) if self.cfg.long_only else int(signal)
        if not next_open and self.target != self.held:
            self._fill(self.target, close)
        self.equity = self.cash + self.units * close
        return self.equity

    def summary(self) -> dict:
        """Equity, return, fills, fees and the position held."""
        return {"equity": self.equity, "return_pct": (self.equity / self.cfg.cash - 1.0) * 100,
                "fills": self.fills, "fees": self.fees, "position": self.units}
