#!/usr/bin/env python3
"""Where one cell's time goes: a k = d cell of the published protocol run twice in this process (the first run
compiles, the second is warm), with the parts its chunks log (descent, the test per orbit, the per-run path, the
end-of-chunk polish, clustering and spectra, writing). Prints a table and writes ``cell_parts.json``.

    python scripts/cell_parts.py --k 18 --runs 1000             # one worker, as in docs/benchmarks.md
    OPENBLAS_NUM_THREADS=1 python scripts/cell_parts.py --k 18  # the same with host BLAS forced to one thread
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import TIMES, sweep_rate  # the sweep log's per-chunk parts, summed per k

from jaxsym import config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default="cell_parts.json")
    args = ap.parse_args()
    cfg = config.from_dict({"name": "parts", "seed": 0, "runs": args.runs,
                            "grid": {"d": [args.k], "k": "d", "target": "identity"},
                            "train": {"optimizer": "sgd", "learning_rate": "5/k", "steps": 20000, "grad_tol": 1e-5,
                                      "dtype": "float32"}, "workers": args.workers})
    rows = []
    for label in ("first (compiles)", "second (warm)"):
        _, stats = sweep_rate(cfg)
        rows.append({"run": label, "wall_s": stats["all"]["wall_s"], **{p: stats[args.k].get(p, 0.0) for p in TIMES}})
    print(f"k = d = {args.k}, {args.runs} runs, {args.workers} worker(s): seconds (parts summed over chunks)")
    print("| run | wall | " + " | ".join(p[:-2] for p in TIMES) + " |")
    print("|---|---:|" + "---:|" * len(TIMES))
    for r in rows:
        print(f"| {r['run']} | {r['wall_s']:.2f} | " + " | ".join(f"{r[p]:.2f}" for p in TIMES) + " |")
    Path(args.out).write_text(json.dumps({"k": args.k, "runs": args.runs, "workers": args.workers, "rows": rows},
                                         indent=1))


if __name__ == "__main__":
    main()
