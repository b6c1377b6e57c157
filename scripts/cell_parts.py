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
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

PARTS = ("descent_s", "handoff_s", "per_run_s", "polish_s", "cluster_s", "write_s")


class _Parts(logging.Handler):
    """Collects the stats dict of each ``… done in …`` line of the sweep's log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.stats: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "done in" in record.getMessage() and isinstance(record.args, tuple) and record.args:
            text = record.args[-1]
            if isinstance(text, str) and "{" in text:
                import ast

                self.stats.append(ast.literal_eval(text[text.index("{"):]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default="cell_parts.json")
    args = ap.parse_args()
    import jaxsym

    handler = _Parts()
    logger = logging.getLogger("jaxsym")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    raw = {"name": "parts", "seed": 0, "runs": args.runs, "grid": {"d": [args.k], "k": "d", "target": "identity"},
           "train": {"optimizer": "sgd", "learning_rate": "5/k", "steps": 20000, "grad_tol": 1e-5,
                     "dtype": "float32"}, "workers": args.workers}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label in ("first (compiles)", "second (warm)"):
            out = Path(tmp) / "sweep"
            shutil.rmtree(out, ignore_errors=True)
            handler.stats.clear()
            t = time.perf_counter()
            jaxsym.run(raw, out, progress=False)
            wall = time.perf_counter() - t
            parts = {p: sum(s.get(p, 0.0) for s in handler.stats) for p in PARTS}
            rows.append({"run": label, "wall_s": wall, **parts})
    print(f"k = d = {args.k}, {args.runs} runs, {args.workers} worker(s): seconds (parts summed over chunks)")
    print("| run | wall | " + " | ".join(p[:-2] for p in PARTS) + " |")
    print("|---|---:|" + "---:|" * len(PARTS))
    for r in rows:
        print(f"| {r['run']} | {r['wall_s']:.2f} | " + " | ".join(f"{r[p]:.2f}" for p in PARTS) + " |")
    Path(args.out).write_text(json.dumps({"k": args.k, "runs": args.runs, "workers": args.workers, "rows": rows},
                                         indent=1))


if __name__ == "__main__":
    main()
