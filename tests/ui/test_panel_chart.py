"""The panel's chart at the start of a session."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from workbench.ui.panel_view import PanelChart


class NoReads:
    """A store that must not be read."""

    def __getattr__(self, name):
        raise AssertionError(f"the chart read the store ({name})")


def test_a_session_with_no_candle_before_its_first_starts_an_empty_chart_without_reading():
    chart = PanelChart(candles=50)
    session = SimpleNamespace(series=SimpleNamespace(ts=np.arange(3, dtype=np.int64)),
                              feed=SimpleNamespace(last_index=-1), symbol="ETH/USDT",
                              timeframe="1m", mode="none")
    chart.start(NoReads(), session)
    assert chart.chart.n_candles == 0
    assert chart.widget.layout.title.text == "ETH/USDT 1m · none"
