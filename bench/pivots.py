"""Pivot detection throughput: vectorised vs streaming on the full ETH/USDT 1m series.

Both detectors run in this one process on the same 130,708 real candles, best of several
repeats each, and must produce the same pivots. The streaming figure is what a live feed pays
per closed candle (goal: well above the coordinator's 200,000 candles/s).

Run: ``.venv/bin/python bench/pivots.py``; writes ``reports/bench/pivots.json``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from workbench.features.pivots import StreamingPivotDetector, detect_pivots, pivots_to_frame
from workbench.paths import DATA_DIR

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, write_report  # noqa: E402

CONFIGS = ((2, 3), (5, 3))  # (strength, levels)


def _stream_all(ts, high, low, strength, levels):
    update = StreamingPivotDetector("1m", strength=strength, levels=levels).update
    out = []
    for t, h, lo in zip(ts, high, low):
        got = update(t, h, lo)
        if got:
            out.extend(got)
    return out


def bench_config(frame: pl.DataFrame, strength: int, levels: int) -> dict:
    ts, high, low = (frame[c].to_numpy() for c in ("ts", "high", "low"))
    t_vec, vec = best_of(lambda: detect_pivots(ts, high, low, timeframe="1m", strength=strength,
                                             levels=levels), 7)
    lists = ts.tolist(), high.tolist(), low.tolist()
    t_stream, streamed = best_of(lambda: _stream_all(*lists, strength, levels), 3)
    agree = pivots_to_frame(streamed).equals(vec.sort("confirmed_ts", "level", "pivot_type"))
    n = frame.height
    return {"strength": strength, "levels": levels, "candles": n, "pivots": vec.height,
            "vectorised_s": t_vec, "streaming_s": t_stream,
            "vectorised_candles_per_s": n / t_vec, "streaming_candles_per_s": n / t_stream,
            "streaming_us_per_candle": t_stream / n * 1e6,
            "vectorised_over_streaming": t_stream / t_vec, "detectors_agree": agree}


def main() -> dict:
    frame = pl.read_parquet(DATA_DIR / "binance_ethusdt_1m.parquet")
    results = [bench_config(frame, s, lv) for s, lv in CONFIGS]
    print(f"pivot detection on ETH/USDT 1m, {frame.height:,} candles")
    print(f"{'strength':>8} {'levels':>6} {'pivots':>7} {'vectorised c/s':>15} "
          f"{'streaming c/s':>14} {'µs/candle':>9} {'ratio':>6} agree")
    for r in results:
        print(f"{r['strength']:>8} {r['levels']:>6} {r['pivots']:>7,} "
              f"{r['vectorised_candles_per_s']:>15,.0f} {r['streaming_candles_per_s']:>14,.0f} "
              f"{r['streaming_us_per_candle']:>9.2f} {r['vectorised_over_streaming']:>5.1f}x "
              f"{r['detectors_agree']}")
    return write_report("pivots", {"series": "ETH/USDT 1m", "results": results})


if __name__ == "__main__":
    main()
