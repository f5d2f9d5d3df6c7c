"""The training modes of a live session (seed 000), defined once.

:class:`TrainingMode` is a ``str`` enum: its members compare equal to their values, so a mode read
from a CLI option, a widget or ``config.json`` is parsed with :meth:`TrainingMode.parse` and every
other module refers to the members, never to a string literal.

=================  =====================================================================
``none``           inference only; the weights never change
``pivots_only``    one step when a pivot is confirmed, on the frame inferred at the pivot
                   candle (L pivot: BUY, H pivot: SELL)
``every_candle``   one step per completed candle on the frame whose label it reveals
``manual``         one step when the user calls ``train_manual(action)``
=================  =====================================================================
"""
from __future__ import annotations

from enum import Enum

from workbench.errors import ParameterError


class TrainingMode(str, Enum):
    """How a live session trains its model (see the module docstring)."""

    NONE = "none"
    PIVOTS_ONLY = "pivots_only"
    EVERY_CANDLE = "every_candle"
    MANUAL = "manual"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value) -> "TrainingMode":
        """Return the mode named ``value`` (a member or its value, case-insensitive).

        Raises
        ------
        ParameterError : naming the value and the known modes.
        """
        if isinstance(value, cls):
            return value
        text = str(value).strip().lower().replace("-", "_")
        for mode in cls:
            if mode.value == text:
                return mode
        raise ParameterError(f"training mode {value!r} is not known; known modes: "
                             f"{', '.join(cls.values())}")

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The mode names, in definition order (for CLI help and widgets)."""
        return tuple(m.value for m in cls)

    @property
    def trains(self) -> bool:
        """True for every mode that may change a weight."""
        return self is not TrainingMode.NONE
