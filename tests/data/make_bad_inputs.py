"""Rebuild the bad-input corpus in tests/data/bad_inputs/ from real shipped candles.

Each file starts from real ETH/USDT 1m rows 23000..23009 (the ten candles right after the
``eth_store`` fixture's slice, so that a *fixed* file would extend the stored series) and breaks
exactly one rule. ``test_bad_inputs.py`` holds the expected rule, row and ts of each file.

Run: ``.venv/bin/python tests/data/make_bad_inputs.py`` (the files are committed).
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from workbench.paths import DATA_DIR

OUT = Path(__file__).with_name("bad_inputs")
HEADER = "ts,open,high,low,close,volume"
BINANCE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                  "taker_buy_volume,taker_buy_quote_volume,ignore")


def base_rows(start: int = 23_000, n: int = 10) -> list[list]:
    eth = pl.read_parquet(DATA_DIR / "binance_ethusdt_1m.parquet").slice(start, n)
    return [list(r) for r in eth.iter_rows()]


def _line(row) -> str:
    return ",".join(str(v) for v in row)


def write_csv(name: str, rows, header: str | None = HEADER) -> None:
    lines = ([header] if header else []) + [_line(r) for r in rows]
    (OUT / name).write_text("\n".join(lines) + "\n")


def binance(row, ts_scale: int = 1) -> list:
    ts, o, h, lo, c, v = row
    return [ts * ts_scale, o, h, lo, c, v, (ts + 59_999) * ts_scale, round(v * c, 4), 100,
            round(v / 2, 4), round(v * c / 2, 4), 0]


def _edit(rows, k: int, col: int, value) -> list[list]:
    out = [list(r) for r in rows]
    out[k][col] = value
    return out


def _iso(ms: int, zone: str = "Z") -> str:
    from datetime import datetime, timezone

    text = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return text + zone


def build() -> None:
    OUT.mkdir(exist_ok=True)
    rows = base_rows()
    (OUT / "empty.csv").write_bytes(b"")
    (OUT / "header_only.csv").write_text(HEADER + "\n")
    write_csv("misnamed_column.csv", rows, header="timestamp,open,high,low,close,volume")
    write_csv("missing_value.csv", _edit(rows, 3, 4, ""))
    write_csv("non_numeric.csv", _edit(rows, 2, 5, "abc"))
    write_csv("nan_value.csv", _edit(rows, 4, 2, "NaN"))
    inf = pl.DataFrame(_edit(rows, 5, 3, float("-inf")), schema=list(HEADER.split(",")),
                       orient="row")
    inf.write_parquet(OUT / "inf_value.parquet")
    write_csv("price_zero.csv", _edit(rows, 1, 3, 0.0))
    r = rows[6]
    write_csv("high_below_open_close.csv", _edit(rows, 6, 2, round(max(r[1], r[4]) - 0.5, 2)))
    r = rows[7]
    write_csv("low_above_open_close.csv", _edit(rows, 7, 3, round(min(r[1], r[4]) + 0.5, 2)))
    write_csv("negative_volume.csv", _edit(rows, 8, 5, -1.0))
    write_csv("duplicate_conflict.csv", rows + [_edit(rows, 3, 5, rows[3][5] + 1.0)[3]])
    write_csv("step_off_grid.csv", _edit(rows, 5, 0, rows[5][0] + 30_000))
    extra = list(rows[4])
    extra[0] += 30_000
    write_csv("step_sub_multiple.csv", rows[:5] + [extra] + rows[5:])
    iso = [[_iso(r[0], "" if k == 2 else "Z"), *r[1:]] for k, r in enumerate(rows)]
    write_csv("iso_without_zone.csv", iso)
    r = rows[4]
    write_csv("binance_no_header_high_below.csv",
              [binance(x) for x in _edit(rows, 4, 2, round(max(r[1], r[4]) - 1.0, 2))],
              header=None)
    write_csv("binance_header_non_numeric.csv", [binance(x) for x in _edit(rows, 6, 1, "x")],
              header=BINANCE_HEADER)
    mixed = [binance(x, 1 if k == 7 else 1000) for k, x in enumerate(rows)]
    write_csv("binance_mixed_units.csv", mixed, header=None)
    overlap = base_rows(22_995, 10)
    write_csv("conflicts_with_store.csv", _edit(overlap, 2, 5, overlap[2][5] + 1.0))
    five = [list(r) for r in pl.read_parquet(DATA_DIR / "binance_ethusdt_1m.parquet")
            .slice(23_000, 50).gather_every(5).iter_rows()]
    write_csv("wrong_timeframe.csv", five)
    (OUT / "not_parquet.parquet").write_bytes(b"PAR1" + b"this is not a parquet file" * 4)
    month = [list(r) for r in pl.read_parquet(DATA_DIR / "btcusd_1mo.parquet").head(6).iter_rows()]
    write_csv("monthly_off_month_start.csv", _edit(month, 3, 0, month[3][0] + 86_400_000))
    build_ts_and_layout_cases(rows)


def build_ts_and_layout_cases(rows) -> None:
    """Files of issue 11: timestamps in a unit that cannot be told, off the grid, odd headers."""
    write_csv("ts_micros_not_whole_ms.csv", [[r[0] * 1000 + (123 if k == 4 else 0), *r[1:]]
                                             for k, r in enumerate(rows)])
    write_csv("ts_no_plausible_unit.csv", [[10**10 + 60 * k, *r[1:]] for k, r in enumerate(rows)])
    write_csv("ts_mixed_seconds_and_ms.csv", [[r[0] // 1000 if k == 6 else r[0], *r[1:]]
                                              for k, r in enumerate(rows)])
    write_csv("off_grid_30s.csv", [[r[0] + 30_000, *r[1:]] for r in rows])
    lines = [HEADER] + [_line(r) for r in rows]
    (OUT / "header_repeated.csv").write_text("\n".join(lines[:6] + [HEADER] + lines[6:]) + "\n")
    write_csv("column_twice.csv", [[*r, 1.0] for r in rows], header=HEADER + ",volume")
    goog = [list(r) for r in pl.read_parquet(DATA_DIR / "goog_1d.parquet").head(6).iter_rows()]
    write_csv("daily_off_midnight.csv", [[r[0] + 5 * 3_600_000, *r[1:]] for r in goog])


if __name__ == "__main__":
    build()
    print(f"wrote {len(list(OUT.iterdir()))} files to {OUT}")
