#!/usr/bin/env python3
"""Benchmark: peak memory of a sweep stays flat while the number of runs per cell grows 10× and 100×.

Each size runs in a fresh process (a real ``jaxsym sweep`` with a fixed chunk size); the process reports
its peak resident set size (``ru_maxrss``). Prints a table and writes ``bench_memory.json``.

    python scripts/bench_memory.py                  # 256, 2,560 and 25,600 runs at k = d = 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import resource, sys, time
from jaxsym import config
from jaxsym.sweep.driver import run_sweep
cfg = config.from_dict({"name": "mem", "seed": 0, "runs": int(sys.argv[1]), "chunk_size": int(sys.argv[3]),
                        "grid": {"d": [int(sys.argv[4])], "k": "d"},
                        "train": {"steps": int(sys.argv[5]), "learning_rate": 0.1}})
t = time.perf_counter()
run_sweep(cfg, sys.argv[2], progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=int, default=256)
    ap.add_argument("--d", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--out", default="bench_memory.json")
    a = ap.parse_args()
    rows = []
    for factor in (1, 10, 100):
        runs = a.base * factor
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", CHILD, str(runs), out, str(a.chunk), str(a.d), str(a.steps)],
                                 check=True, capture_output=True, text=True)
            rss_kb, sweep_s = res.stdout.split()[-2:]
            rows.append({"runs": runs, "peak_rss_mb": round(int(rss_kb) / 1024, 1),
                         "sweep_seconds": round(float(sweep_s), 1), "wall_seconds": round(time.perf_counter() - t, 1)})
    print(f"k = d = {a.d}, chunk_size = {a.chunk}, steps = {a.steps}")
    print("| runs per cell | peak RSS (MB) | sweep time (s) |")
    print("|---:|---:|---:|")
    for r in rows:
        print(f"| {r['runs']:,} | {r['peak_rss_mb']} | {r['sweep_seconds']} |")
    with open(a.out, "w") as f:
        json.dump({"d": a.d, "k": a.d, "chunk_size": a.chunk, "steps": a.steps, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
