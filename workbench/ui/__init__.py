"""The user-facing layer: charts, the six-mode control panel, the notebook suite and Voila.

``record(name, value)`` is the one call a notebook uses to publish a headline value next to its
report (see :mod:`workbench.ui.record`).
"""
from workbench.ui.record import record, recorded

__all__ = ["record", "recorded"]
