"""PnL tracking of a live session: the backtest simulator, one bar at a time.

:class:`PnLTracker` is :class:`workbench.backtest.simulate.SimStepper` (the incremental form of
:func:`~workbench.backtest.simulate.simulate`, same fill rules and arithmetic): a signal is an
action (BUY = be long, SELL = be short or flat when long-only, HOLD = keep), a decision fills at
the next bar's open (or at its own close), each fill pays the fee, and equity is cash plus the
position marked at each close. Feeding it a session's signals gives, bar for bar, the equity the
backtest reports for the same signals (tests/live/test_session.py).
"""
from __future__ import annotations

from workbench.backtest.simulate import SimStepper


class PnLTracker(SimStepper):
    """A live session's PnL: :class:`~workbench.backtest.simulate.SimStepper` under the name the
    session and the panel use."""
