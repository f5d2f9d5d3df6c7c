"""A new training mode is one class and one registration, made here, in the test module only."""
from __future__ import annotations

import pytest

from workbench.errors import ParameterError
from workbench.live.session import LiveSession
from workbench.live.strategy import STRATEGIES, TrainingStrategy, register_strategy

from ._live_helpers import tiny_handle

SYMBOL, TF = "ETH/USDT", "1m"


class EveryThirdCandle(TrainingStrategy):
    """Test-only mode: train the frame of every third series row on its realised move."""

    def should_train_on_candle(self, inference_ref) -> bool:
        return inference_ref is not None and inference_ref.end_index % 3 == 0


@pytest.fixture
def every_third():
    register_strategy("every_third_test", EveryThirdCandle)
    yield "every_third_test"
    STRATEGIES.unregister("every_third_test")


def test_a_mode_registered_from_a_test_runs_a_session(eth_store, every_third):
    ts = eth_store.read_ohlcv(SYMBOL, TF)["ts"].to_numpy()
    handle = tiny_handle()
    session = LiveSession(handle, eth_store, SYMBOL, TF, every_third, int(ts[100]), int(ts[160]))
    stats = session.run()
    series_ts = session.series.ts.tolist()
    first, last = session.feed.start_index, session.feed.end_index - 1
    expected = [series_ts[r] for r in range(first, last) if r % 3 == 0]  # revealed by r + 1
    trained = [r.frame_end_ts[0] for r in session.training_log]
    assert trained == expected and len(expected) == 20
    assert stats["per_candle"] == stats["training_steps"] == handle.version == 20
    assert stats["mode"] == "every_third_test" and stats["errors"] == 0
    assert isinstance(session.training_strategy, EveryThirdCandle)


def test_an_unknown_mode_names_the_registered_ones(eth_store):
    with pytest.raises(ParameterError, match="unknown training mode 'sometimes'; known: "
                                             "'every_candle', 'manual', 'none', 'pivots_only'"):
        LiveSession(tiny_handle(), eth_store, SYMBOL, TF, "sometimes")
