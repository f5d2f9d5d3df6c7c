"""Chart functions: pivots drawn at pivot time with their confirmation, overview PNG written."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from workbench.errors import NotFoundError, ParameterError
from workbench.features.pivots import pivots_from_frame
from workbench.ui.charts import overview_png, plot_candles_with_pivots

DAY = 86_400_000.0


def _confirmation_segments(ax) -> list[tuple[float, float, float]]:
    """Return (x0, x1, y) of every horizontal dashed confirmation segment on the axes."""
    out = []
    for coll in ax.collections:
        if isinstance(coll, LineCollection) and coll.get_linestyle()[0][1] is not None:
            out += [(seg[0, 0], seg[1, 0], seg[0, 1]) for seg in coll.get_segments()]
    return out


def test_plot_marks_each_pivot_at_its_time_and_confirmation(eth_slice):
    frame = eth_slice.head(300)
    pivots = pivots_from_frame(frame, "1m", strength=2, levels=3)
    fig = plot_candles_with_pivots(frame, pivots, title="ETH test")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title() == "ETH test"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for kind in ("L1H", "L1L", "L2H", "L2L"):
        n = pivots.filter(pl.col("pivot_type") == kind).height
        assert f"{kind} ({n})" in labels
    assert "pivot → confirmed_ts" in labels
    segments = sorted(_confirmation_segments(ax))
    expected = sorted(zip(pivots["ts"].to_numpy() / DAY, pivots["confirmed_ts"].to_numpy() / DAY,
                          pivots["price"].to_numpy()))
    assert len(segments) == pivots.height
    np.testing.assert_allclose(np.array(segments), np.array(expected), rtol=1e-12)


def test_plot_without_pivots_and_empty_frame(eth_slice):
    frame = eth_slice.head(20)
    fig = plot_candles_with_pivots(frame, pivots_from_frame(frame.head(0), "1m"))
    assert fig.axes[0].get_legend() is None
    with pytest.raises(ParameterError, match="at least one candle"):
        plot_candles_with_pivots(frame.head(0), frame.head(0))


def test_overview_png_from_store(eth_store, tmp_path):
    path = overview_png(eth_store, tmp_path / "reports" / "overview.png", days=1.0)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_overview_png_without_series_names_it(tmp_store, tmp_path):
    with pytest.raises(NotFoundError, match="ETH/USDT 1m"):
        overview_png(tmp_store, tmp_path / "overview.png")
