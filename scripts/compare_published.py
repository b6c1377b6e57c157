"""Spurious shares of a k = d sweep beside the published gradient-descent counts, with sampling errors.

Published counts: I. Safran, G. Yehudai, O. Shamir, *The Effects of Mild Over-parameterization on the
Optimization Landscape of Shallow ReLU Neural Networks* (COLT 2021), public repository
`ItaySafran/Overparameterization` (README, `local_minima.py`, and the archive of the minima they found,
"Processed minima.zip", commit d162690): 500 runs per k of float64 gradient descent with step 5/k from
W_ij ~ N(0, 1/k) until ‖∇F‖ ≤ 1e-12; the global-minimum counts below were recomputed from their stored minima.

    .venv/bin/python scripts/compare_published.py results/safran_shamir
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from jaxsym.report.published import GLOBAL as PUBLISHED_GLOBAL
from jaxsym.report.published import RUNS as PUBLISHED_RUNS


def main(out: Path) -> None:
    runs = pd.read_parquet(out / "runs.parquet")
    runs = runs[runs["d"] == runs["k"]]
    print("| k = d | runs | spurious (jaxsym) | published runs | spurious (published) | difference | "
          "standard error | z |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    zs = []
    for k, g in runs.groupby("k"):
        if k not in PUBLISHED_GLOBAL:
            continue
        n1, p1 = len(g), float((g["status"] == "spurious").mean())
        n2, p2 = PUBLISHED_RUNS, 1 - PUBLISHED_GLOBAL[k] / PUBLISHED_RUNS
        se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        z = (p1 - p2) / se if se > 0 else 0.0
        zs.append(z)
        print(f"| {k} | {n1} | {100 * p1:.1f}% | {n2} | {100 * p2:.1f}% | {100 * (p1 - p2):+.1f} | "
              f"{100 * se:.1f} | {z:+.2f} |")
    zs = np.array(zs)
    print(f"\n{np.sum(np.abs(zs) <= 2)} of {len(zs)} cells within 2 standard errors; "
          f"χ² = Σz² = {np.sum(zs ** 2):.1f} on {len(zs)} cells")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
