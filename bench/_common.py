"""Helpers shared by the bench scripts: best-of timing and the JSON report in reports/bench/."""
from __future__ import annotations

import json
import os
import platform
import time

from workbench.paths import REPORTS_DIR


def best_of(fn, repeats: int) -> tuple[float, object]:
    """Return (fastest wall time in seconds over ``repeats`` calls of ``fn``, its last result)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def write_report(name: str, report: dict) -> dict:
    """Add the machine and load context to ``report``, write reports/bench/NAME.json, print it."""
    report = {"benchmark": name, **report, "python": platform.python_version(),
              "machine": platform.machine(), "cpus": os.cpu_count(),
              "load_avg_1m": os.getloadavg()[0],
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = REPORTS_DIR / "bench" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out} (1-min load average {report['load_avg_1m']:.1f} on {report['cpus']} CPUs)")
    return report
