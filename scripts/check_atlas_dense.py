#!/usr/bin/env python3
"""Check the local minima of an atlas scan in the full k²-dimensional space, independently of the isotypic blocks.

    .venv/bin/python scripts/check_atlas_dense.py results/scan100 30 50 [--all] [--only "Δ(S99×S1),…"]

For each k given, each spurious minimum of the scan ``DIR/scan/k*.parquet`` (every classified point with ``--all``) is
embedded, and the closed-form gradient (``jaxsym.landscape.model.grad``) and dense closed-form Hessian
(``jaxsym.landscape.model.hessian``, then ``numpy.linalg.eigvalsh``) give its full-space ‖∇F‖, its index (eigenvalues
below
−1e-6) and λ_min, printed next to the scan's; ``--only`` keeps the isotropy groups named. At k = 50 the Hessian
is 2,500 × 2,500; at k = 100, 10,000 × 10,000 (0.8 GB, minutes per point).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsym.fixedpoints.space import Space
from jaxsym.landscape import model

SPURIOUS = ("spurious", "minimum")  # a spurious minimum's kind (older tables: "minimum")


def main(d: Path, ks: list[int], every: bool, only: set[str]) -> None:
    files = sorted((d / "scan").glob("k*.parquet"))  # what a running scan has written so far
    t = pd.concat([pd.read_parquet(f) for f in files]) if files else pd.read_parquet(d / "atlas.parquet")
    print("| k | isotropy | loss | ‖∇F‖ (dense) | index: scan / dense | λ_min: scan / dense | seconds |")
    print("|---:|---|---:|---:|---|---|---:|")
    bad = 0
    for k in ks:
        rows = t[(t["k"] == k) & (t["index"].notna() if every else t["kind"].isin(SPURIOUS))]
        rows = rows[rows["isotropy"].isin(only)] if only else rows
        for r in rows.itertuples():
            t0 = time.perf_counter()
            with jax.enable_x64(True):
                W = Space(tuple(int(p) for p in r.space)).embed(jnp.asarray(r.x, jnp.float64))
                V = jnp.eye(k, dtype=jnp.float64)
                gn = float(jnp.linalg.norm(model.grad(W, V)))
                eigs = np.linalg.eigvalsh(np.asarray(model.hessian(W, V)))
            index = int((eigs < -1e-6).sum())
            bad += index != r.index or gn > 1e-10 or abs(eigs[0] - r.hess_min) > 1e-8
            print(f"| {k} | {r.isotropy} | {r.loss:.6f} | {gn:.1e} | {r.index} / {index} | {r.hess_min:.6f} / "
                  f"{eigs[0]:.6f} | {time.perf_counter() - t0:.1f} |", flush=True)
    print(f"\n{bad} disagreements (index, ‖∇F‖ > 1e-10 or λ_min apart by more than 1e-8)")


if __name__ == "__main__":
    argv = sys.argv[1:]
    only: set[str] = set()
    if "--only" in argv:
        i = argv.index("--only")
        only = set(argv[i + 1].split(",")) if i + 1 < len(argv) else set()
        argv = argv[:i] + argv[i + 2:]
    args = [a for a in argv if a != "--all"]
    if len(args) < 2 or ("--only" in sys.argv and not only):
        sys.exit(__doc__)
    main(Path(args[0]), [int(v) for v in args[1:]], "--all" in argv, only)
