"""Run every bad-input file and bad parameter through the real ``workbench`` CLI and count outcomes.

Not a test (pytest does not collect it): a census an adversarial user would run. Each case runs
the console script in a subprocess against a fresh copy of a real store (ETH/USDT 1m, the
3,000 candles of the ``eth_store`` fixture) and is classed as

* **refused cleanly**: exit status 2, exactly one ``error: ...`` line on stderr, no traceback;
* **accepted correctly**: exit status 0 and the stored candles are the expected ones (files
  that look odd but are right: microseconds, nanoseconds, one row in seconds...);
* **traceback**: a Python traceback reached the user;
* **store changed by a refused file**: a refused case left the store (or the ``--db`` file) other
  than it was;
* **wrong outcome**: anything else (a bad input accepted, a good one refused).

Run from the project root: ``.venv/bin/python tests/data/bad_input_census.py`` (about 2 minutes);
prints one line per case and the counts, and writes ``reports/bad_input_census.json``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.data.test_bad_inputs import BAD, CASES  # noqa: E402
from workbench.data.store import Store  # noqa: E402
from workbench.paths import DATA_DIR, REPORTS_DIR  # noqa: E402

WORKBENCH = Path(sys.executable).with_name("workbench")
ETH = pl.read_parquet(DATA_DIR / "binance_ethusdt_1m.parquet")
BASE = ETH.slice(20_000, 3_000)
NEXT = ETH.slice(23_000, 5)  # the candles right after BASE


@dataclass
class Case:
    """One CLI run: ``args`` after ``--db DB``; ``good`` cases must store ``expect`` exactly."""

    name: str
    args: list[str]
    good: bool = False
    expect: pl.DataFrame | None = None  # ETH/USDT 1m after a good case
    db: Path | None = None  # run against this file instead of a copy of the base store
    setup: list = field(default_factory=list)  # callables(db) run on the copy first


def _fingerprint(db: Path) -> object:
    if not db.exists() or db.is_dir():
        return None
    if db.suffix != ".duckdb":
        return db.read_bytes()
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()  # noqa: S608
                for t in ("ohlcv", "ingest_cache", "pivot_points", "indicators")]
    finally:
        con.close()


def _run(case: Case, db: Path) -> str:
    out = subprocess.run([str(WORKBENCH), "--db", str(db), *case.args], capture_output=True,
                         text=True, timeout=300)
    text = out.stdout + out.stderr
    if "Traceback" in text:
        return "traceback"
    lines = out.stderr.strip().splitlines()
    if out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "):
        return "refused"
    return f"exit {out.returncode}"


def _stored(db: Path) -> pl.DataFrame:
    return Store(db).read_ohlcv("ETH/USDT", "1m")


def classify(case: Case, db: Path) -> tuple[str, str]:
    """Return (class, detail) of one case run on ``db``."""
    for fn in case.setup:
        fn(db)
    before = _fingerprint(db)
    outcome = _run(case, db)
    if outcome == "traceback":
        return "traceback", outcome
    if case.good:
        ok = outcome == "exit 0" and (case.expect is None or _stored(db).equals(case.expect))
        return ("accepted correctly" if ok else "wrong outcome"), outcome
    if outcome != "refused":
        return "wrong outcome", outcome
    if _fingerprint(db) != before:
        return "store changed by a refused file", outcome
    return "refused cleanly", outcome


def _write(tmp: Path, name: str, frame: pl.DataFrame) -> str:
    path = tmp / name
    (frame.write_parquet if name.endswith(".parquet") else frame.write_csv)(path)
    return str(path)


def _ingest(path: str, *extra: str, tf: str = "1m") -> list[str]:
    return ["data", "ingest", path, "--symbol", "ETH/USDT", "--timeframe", tf, *extra]


def _micro_row(db: Path) -> None:
    """The damage the old reader did: a microsecond row committed into the series."""
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO ohlcv VALUES ('ETH/USDT', '1m', ?, 1, 2, 0.5, 1, 1)",
                [int(NEXT["ts"][0]) * 1_000])
    con.close()


def _huge_volumes(db: Path) -> None:
    Store(db).replace_series("HUGE", "1m", BASE.head(15).with_columns(volume=pl.lit(1e308)))


def file_cases() -> list[Case]:
    """Every file of tests/data/bad_inputs/ (each breaks one rule)."""
    return [Case(f"file {name}", _ingest(str(BAD / name), tf=tf))
            for name, (tf, *_rest) in sorted(CASES.items())]


def good_cases(tmp: Path) -> list[Case]:
    """Files that look odd but are right: each must be stored at its real time."""
    with_next = pl.concat([BASE, NEXT])
    one = NEXT.head(1)
    scaled = {k: NEXT.with_columns(pl.col("ts") * f) for k, f in (("us", 1_000), ("ns", 10**6))}
    return [
        Case("2-row Parquet in microseconds", _ingest(_write(tmp, "us.parquet",
                                                             scaled["us"].head(2))),
             good=True, expect=pl.concat([BASE, NEXT.head(2)])),
        Case("2-row Parquet in nanoseconds", _ingest(_write(tmp, "ns.parquet",
                                                            scaled["ns"].head(2))),
             good=True, expect=pl.concat([BASE, NEXT.head(2)])),
        Case("µs rows appended to the series", _ingest(_write(tmp, "us5.parquet", scaled["us"])),
             good=True, expect=with_next),
        Case("1-row CSV in seconds", _ingest(_write(tmp, "s1.csv", one.with_columns(
            pl.col("ts") // 1000))), good=True, expect=pl.concat([BASE, one])),
        Case("µs file with --ts-unit us", _ingest(_write(tmp, "us5b.parquet", scaled["us"]),
                                                  "--ts-unit", "us"),
             good=True, expect=with_next),
        Case("data info on a store holding a µs row", ["data", "info"], good=True,
             setup=[_micro_row]),
        Case("data delete of that µs row", ["data", "delete", "--symbol", "ETH/USDT",
                                            "--timeframe", "1m", "--start", "253402300800000",
                                            "--yes"], good=True, expect=BASE,
             setup=[_micro_row]),
    ]


def parameter_cases(tmp: Path) -> list[Case]:
    """Bad parameters: each must be refused in one line with the store untouched."""
    good_csv = _write(tmp, "good.csv", NEXT)
    iso = _write(tmp, "iso.csv", NEXT.with_columns(pl.from_epoch("ts", "ms").dt.replace_time_zone(
        "UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")))
    not_db = tmp / "candles.csv"
    shutil.copy(good_csv, not_db)
    us = _write(tmp, "us_declared_ms.parquet", NEXT.with_columns(pl.col("ts") * 1_000))
    pivots = ["data", "pivots", "--symbol", "ETH/USDT", "--timeframe", "1m"]
    delete = ["data", "delete", "--symbol", "ETH/USDT", "--timeframe", "1m"]
    cases = [
        Case("ingest --symbol ''", ["data", "ingest", good_csv, "--symbol", "", "--timeframe",
                                     "1m"]),
        Case("ingest --symbol ' ETH'", ["data", "ingest", good_csv, "--symbol", " ETH",
                                         "--timeframe", "1m"]),
        Case("ingest --timeframe 7m", _ingest(good_csv, tf="7m")),
        Case("ingest --ts-unit h", _ingest(good_csv, "--ts-unit", "h")),
        Case("ingest --ts-unit s on ISO text", _ingest(iso, "--ts-unit", "s")),
        Case("ingest µs file with --ts-unit ms", _ingest(us, "--ts-unit", "ms")),
        Case("ingest a missing file", _ingest(str(tmp / "nope.csv"))),
        Case("pivots --levels 0", [*pivots, "--levels", "0"]),
        Case("pivots --levels 11", [*pivots, "--levels", "11"]),
        Case("pivots --levels 100000", [*pivots, "--levels", "100000"]),
        Case("pivots --strength 0", [*pivots, "--strength", "0"]),
        Case("pivots --until garbage", [*pivots, "--until", "soon"]),
        Case("pivots of an unknown series", ["data", "pivots", "--symbol", "NOPE",
                                             "--timeframe", "1m"]),
        Case("resample --to 2h", ["data", "resample", "--symbol", "ETH/USDT", "--to", "2h"]),
        Case("resample --from 1M", ["data", "resample", "--symbol", "ETH/USDT", "--from", "1M",
                                    "--to", "1d"]),
        Case("resample 1e308 volumes (sum overflows)", ["data", "resample", "--symbol", "HUGE",
                                                        "--to", "5m"], setup=[_huge_volumes]),
        Case("delete without --yes", delete),
        Case("delete an unknown series", ["data", "delete", "--symbol", "NOPE", "--timeframe",
                                          "1m", "--yes"]),
        Case("delete --start after --end", [*delete, "--start", "2025-06-02", "--end",
                                            "2025-06-01", "--yes"]),
        Case("delete --start garbage", [*delete, "--start", "yesterday", "--yes"]),
    ]
    for args in (["data", "info"], _ingest(good_csv), pivots,
                 ["data", "resample", "--symbol", "ETH/USDT", "--to", "5m"], [*delete, "--yes"]):
        cases.append(Case(f"--db candles.csv {' '.join(args[:2])}", args, db=not_db))
    cases.append(Case("--db a folder: data info", ["data", "info"], db=tmp))
    return cases


def main() -> dict:
    counts: dict[str, int] = {}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        template = tmp / "template.duckdb"
        Store(template).replace_series("ETH/USDT", "1m", BASE)
        cases = [*file_cases(), *good_cases(tmp), *parameter_cases(tmp)]
        for k, case in enumerate(cases):
            db = case.db or tmp / f"case{k}.duckdb"
            if case.db is None:
                shutil.copy(template, db)
            verdict, detail = classify(case, db)
            counts[verdict] = counts.get(verdict, 0) + 1
            rows.append({"case": case.name, "verdict": verdict, "detail": detail})
            print(f"{verdict:32} {detail:8} {case.name}", flush=True)
    summary = {"cases": len(rows), **{k: counts.get(k, 0) for k in (
        "refused cleanly", "accepted correctly", "traceback", "store changed by a refused file",
        "wrong outcome")}}
    print(json.dumps(summary))
    out = REPORTS_DIR / "bad_input_census.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "cases": rows}, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
