"""The control panel's log: newest line always visible, cleared per session, predictions summarised.

:class:`PanelLog` keeps the last lines and renders them into an ``HTML`` widget whose box is a
reversed flex column, so the browser keeps it scrolled to the bottom: the newest line stays in
view however many lines arrive, without any JavaScript. Setting the widget's value is a trait
set, safe from any thread (see :mod:`workbench.ui.panel`).

:class:`PredictionSummary` is a session update hook (``LiveSession.add_update_hook``). A line per
prediction flooded the log and arrived out of order (the panel's poll printed them after
"session ended"); the hook instead runs in the session's thread, in candle order, and buffers one
summary line per ``every`` candles plus one line per trade (a signal that changes the position).
The panel drains the buffer on every poll and once more before it logs the end of the session,
so the end is always the last line.
"""
from __future__ import annotations

import html
import threading
import time
from collections import deque

import ipywidgets as w

from workbench.actions import ACTIONS, SIGNAL_OF_ACTION

LOG_LINES = 200
SUMMARY_EVERY = 50  # candles per summary line
_BOX = ("max-height:220px;overflow-y:auto;display:flex;flex-direction:column-reverse;"
        "border:1px solid #ddd;padding:2px 6px;font-family:monospace;font-size:12px")
_SIDE = {1: "long", -1: "short"}


def hhmm(ts: int) -> str:
    """A candle time as month-day hour:minute (UTC)."""
    return time.strftime("%m-%d %H:%M", time.gmtime(ts / 1000))


class PanelLog:
    """The last ``LOG_LINES`` lines of the panel, shown newest-at-the-bottom and kept in view."""

    def __init__(self, maxlen: int = LOG_LINES):
        self._lines: deque[str] = deque(maxlen=maxlen)
        self._guard = threading.Lock()
        self.widget = w.HTML().add_class("wb-log")

    def add(self, message: str) -> None:
        """Append one line (time-stamped) and re-render."""
        with self._guard:
            self._lines.append(f"{time.strftime('%H:%M:%S')} {message}")
            self._render()

    def clear(self) -> None:
        """Forget every line (a new session starts with an empty log)."""
        with self._guard:
            self._lines.clear()
            self._render()

    @property
    def lines(self) -> list[str]:
        """The lines currently shown, oldest first."""
        with self._guard:
            return list(self._lines)

    def _render(self) -> None:
        body = "\n".join(html.escape(line) for line in self._lines)
        # the inner div is the single flex item: column-reverse pins the scroll to its bottom
        self.widget.value = (f"<div class='wb-log-box' style='{_BOX}'><div "
                             f"style='white-space:pre'>{body}</div></div>")


class PredictionSummary:
    """Turn a session's per-candle updates into summary and trade lines (see module docstring).

    Use as ``session.add_update_hook(summary)``; :meth:`drain` returns the buffered lines.
    """

    def __init__(self, every: int = SUMMARY_EVERY):
        self.every = every
        self._guard = threading.Lock()
        self._pending: list[str] = []
        self._position = 0
        self._window = {a: 0 for a in ACTIONS}
        self._first_ts: int | None = None
        self.candles = self.trades = 0

    def __call__(self, session, info: dict) -> None:
        pred = info["prediction"]
        lines = []
        self.candles += 1
        if self._first_ts is None:
            self._first_ts = info["ts"]
        if pred is not None:
            self._window[pred["action"]] += 1
            lines += self._trade(pred, info)
        if self.candles % self.every == 0:
            lines.append(self._summary(info))
        if lines:
            with self._guard:
                self._pending.extend(lines)

    def _trade(self, pred: dict, info: dict) -> list[str]:
        signal = pred["signal"]
        if signal == 0 or signal == self._position:
            return []
        self._position = signal
        self.trades += 1
        name = next(a for a, s in SIGNAL_OF_ACTION.items() if s == signal)
        return [f"trade {hhmm(pred['ts'])}: {name} ({pred['confidence']:.2f}) -> "
                f"{_SIDE[signal]}, model v{pred['model_version']}, equity "
                f"{info['equity']:.2f}"]

    def _summary(self, info: dict) -> str:
        counts = ", ".join(f"{a} {n}" for a, n in self._window.items())
        line = (f"candles {self.candles - self.every + 1}-{self.candles} "
                f"({hhmm(self._first_ts)}..{hhmm(info['ts'])}): {counts}; equity "
                f"{info['equity']:.2f}")
        self._window = {a: 0 for a in ACTIONS}
        self._first_ts = None
        return line

    def drain(self) -> list[str]:
        """Return and forget the lines buffered since the last call."""
        with self._guard:
            out, self._pending = self._pending, []
        return out
