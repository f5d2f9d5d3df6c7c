"""The trading vocabulary every layer shares: actions, their signals and the realised-action rule.

This module sits at the bottom of the package (it imports only numpy) so the store, the engines,
the backtest and the live code name an action the same way without importing one another.

* :data:`ACTIONS` are the class labels; an action's class index is its position in the tuple.
* :data:`SIGNAL_OF_ACTION` maps an action to the backtest signal: +1 be long, -1 be short, 0 keep.
* :func:`realised_actions` turns realised moves (percent) into actions with the hold band
  :data:`HOLD_BAND`; it is the one rule behind live labels, the ledger's hit rates and the rule
  labeller, and :func:`realised_action` is its scalar form.
"""
from __future__ import annotations

import numpy as np

ACTIONS = ("BUY", "SELL", "HOLD")
BUY, SELL, HOLD = (ACTIONS.index(a) for a in ("BUY", "SELL", "HOLD"))

#: action name -> signal value (+1 long, -1 short, 0 keep the position)
SIGNAL_OF_ACTION = {"BUY": 1, "SELL": -1, "HOLD": 0}
#: signal value per class index, in ACTIONS order
SIGNAL_OF_CLASS = np.array([SIGNAL_OF_ACTION[a] for a in ACTIONS], dtype=np.int8)

#: default half-width (percent) of the band in which a realised move counts as HOLD: a move of
#: 0.05 % is within a typical spread plus fee, so calling it BUY or SELL would label noise
HOLD_BAND = 0.05

#: where an annotation (a stored label) came from, in label precedence order
ANNOTATION_SOURCES = ("manual", "pivot", "rule")


#: class index per signal value, as an array indexed by ``signal + 1`` (-1 SELL, 0 HOLD, +1 BUY)
_CLASS_OF_SIGNAL = np.array([ACTIONS.index(a) for a in ("SELL", "HOLD", "BUY")], dtype=np.int64)


def realised_actions(move_pct, hold_band: float = HOLD_BAND) -> np.ndarray:
    """Return int64 class indices of realised moves: BUY above ``+hold_band``, SELL below
    ``-hold_band``, else HOLD.

    The rule is "the signal of a move is its sign outside the band"; the action is the one with
    that signal. NaN compares false both ways, so an unknown move is HOLD.

    Parameters
    ----------
    move_pct : array-like of moves in percent.
    hold_band : percent half-width of the HOLD band; the bounds themselves are HOLD.

    Returns
    -------
    numpy.ndarray of int64, the shape of ``move_pct``.
    """
    move = np.asarray(move_pct, dtype=np.float64)
    signal = (move > hold_band).astype(np.int64) - (move < -hold_band)
    return _CLASS_OF_SIGNAL[signal + 1]


def realised_action(move_pct: float, hold_band: float = HOLD_BAND) -> int:
    """Return the class index of one realised move: :func:`realised_actions` for a scalar.

    The same sign-outside-the-band rule and table, without numpy's per-call overhead (this runs
    once per candle in a live session).
    """
    return int(_CLASS_OF_SIGNAL[int(move_pct > hold_band) - int(move_pct < -hold_band) + 1])


def action_check_sql(column: str = "action") -> str:
    """Return a SQL CHECK clause restricting ``column`` to :data:`ACTIONS`.

    A CHECK constraint cannot take bound parameters, so the (constant) action names are quoted
    here, from this module's own tuple, never from user input.
    """
    names = ", ".join(f"'{a}'" for a in ACTIONS)
    return f"CHECK ({column} IN ({names}))"
