"""Run one benchmark script on two checkouts alternately and print their figures side by side.

``python bench/compare.py --base /path/to/old/checkout [--rounds 3] coordinator.py --quick``

Each round runs this checkout's ``bench/<script>`` with ``PYTHONPATH`` set to the base checkout,
then to this one (same interpreter, same benchmark code: only the library differs), so both meet
the same machine load; ``--own-script`` runs each checkout's own copy instead. After each
run the script's JSON report (``reports/bench/<script stem>.json`` of that checkout) is read and
its numeric figures flattened to dotted keys. The median per key is printed as
``base  new  new/base`` for throughputs (``per_s``), times (``_ms``, ``_us``, ``_s``) and the
script's own in-run ratios (``x_vs_y``: on a loaded machine the steadiest figure), and the whole
comparison is written to ``reports/bench/compare_<stem>.json`` of this checkout.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_TIMED = ("per_s", "_ms", "_us", "_s", "seconds")
#: ratios a script measures against a baseline of its own run (robust to the machine's load)
_RELATIVE = "_vs_"


def _flatten(value, prefix: str = "") -> dict[str, float]:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {prefix[:-1]: float(value)}
    return {}


def _run(tree: Path, script: str, args: list[str], own_script: bool) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    code = (tree if own_script else ROOT) / "bench" / script
    subprocess.run([sys.executable, str(code), *args], cwd=tree, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # a script writes beside itself or beside the workbench package it imported: take the newest
    reports = [t / "reports" / "bench" / f"{Path(script).stem}.json" for t in (tree, ROOT)]
    report = max((r for r in reports if r.exists()), key=lambda r: r.stat().st_mtime)
    return _flatten(json.loads(report.read_text()))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, type=Path, help="the checkout to compare against")
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs of each checkout")
    ap.add_argument("--own-script", action="store_true",
                    help="run each checkout's own copy of the script (default: this checkout's "
                         "script on both libraries, so only the library differs)")
    ap.add_argument("script", help="a script of bench/, e.g. coordinator.py")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    opts = ap.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {"base": [], "new": []}
    for _ in range(opts.rounds):
        for name, tree in (("base", opts.base.resolve()), ("new", ROOT)):
            runs[name].append(_run(tree, opts.script, opts.args, opts.own_script))
    keys = [k for k in runs["new"][0] if k in runs["base"][0]
            and (k.endswith(_TIMED) or _RELATIVE in k)]
    table = {}
    for key in keys:
        base = statistics.median(r[key] for r in runs["base"] if key in r)
        new = statistics.median(r[key] for r in runs["new"] if key in r)
        table[key] = {"base": base, "new": new, "ratio": round(new / base, 3) if base else None}
        print(f"{key:70s} {base:14.3f} {new:14.3f} {table[key]['ratio']}")
    out = ROOT / "reports" / "bench" / f"compare_{Path(opts.script).stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"base": str(opts.base), "rounds": opts.rounds, "script": opts.script,
              "args": opts.args, "loadavg_end": os.getloadavg(), "figures": table}
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
