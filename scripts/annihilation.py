"""Annihilation by neurons, per symmetry type: how many extra neurons turn each spurious minimum into a saddle.

For every spurious local minimum of the k = d problem (teacher ``V = I_d``) in a scan directory (``jaxsym atlas
--k 3 --k-to 20``: at most three blocks), and each n = 1, 2, …, ``--n-max``: every *split point* of it with n
more neurons (one neuron of a block split into n + 1 parallel copies of 1/(n+1) of it: the same function, hence
a critical point of the k = d + n problem with the same loss; :func:`jaxsym.fixedpoints.wide.splits`, one per
block) classified by the dense Hessian in the (d + n)·d-dimensional space (the one index rule). The minimum is
*annihilated by n neurons* when every one of its split points is a saddle with n extra neurons; the script
reports the smallest such n (``> n_max`` when none is).

Optionally (``--new``) it also searches every ``Fix(Δ(S_p) × S_1)`` with at most three paired blocks from random
starts for the spurious minima of the k = d + 1 problem that no split gives (as ``jaxsym atlas --extra 1``).

    .venv/bin/jaxsym atlas --k 3 --k-to 20 --out results/scan3-20
    .venv/bin/python scripts/annihilation.py results/scan3-20 --d-from 6 --d-to 20 [--new] [--out FILE.parquet]

Prints a Markdown table per type and one per d, and writes the per-minimum rows to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsym.fixedpoints.search import types_up_to
from jaxsym.fixedpoints.space import Space
from jaxsym.fixedpoints.wide import classify, critical_points, splits
from jaxsym.io import columns as col

jax.config.update("jax_enable_x64", True)


def minima_at(scan: pd.DataFrame, d: int) -> pd.DataFrame:
    """The spurious minima of the scan at k = d (the older vocabulary "minimum" too)."""
    return scan[(scan[col.K] == d) & scan[col.KIND].isin(("spurious", "minimum"))].sort_values(col.LOSS)


def annihilation(space: tuple[int, ...], x: np.ndarray, n_max: int) -> tuple[int | None, list[int]]:
    """(the smallest n ≤ n_max at which every split point is a saddle, or None; the smallest split index for
    each n = 1 … up to that n)."""
    W = np.asarray(Space(space).embed(jnp.asarray(x, jnp.float64)))
    indices = []
    for n in range(1, n_max + 1):
        pts = [classify(Space(fine, extra=n), z, "split") for fine, z in splits(space, W, n)]
        indices.append(min(p.index for p in pts))
        if all(p.index > 0 for p in pts):
            return n, indices
    return None, indices


def new_minima(d: int) -> list[str]:
    """Spurious minima of the k = d + 1 problem found from random starts in every Fix(Δ(S_p) × S_1)."""
    found = []
    for blocks in types_up_to(d, 3):
        for p in critical_points(blocks, 1):
            if p.index == 0 and p.loss > 1e-10:
                found.append(f"{p.isotropy} {p.loss:.6f} ({p.hess_min:.4g})")
    return sorted(set(found), key=lambda s: float(s.split()[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scan", type=Path, help="a scan directory (jaxsym atlas --k 3 --k-to 20)")
    ap.add_argument("--d-from", type=int, default=6)
    ap.add_argument("--d-to", type=int, default=20)
    ap.add_argument("--n-max", type=int, default=3)
    ap.add_argument("--new", action="store_true", help="also search k = d + 1 for new spurious minima")
    ap.add_argument("--out", type=Path, default=None, help="write the per-minimum rows (Parquet)")
    args = ap.parse_args()
    scan = pd.read_parquet(args.scan / "atlas.parquet")
    rows, per_d = [], []
    for d in range(args.d_from, args.d_to + 1):
        t0 = time.perf_counter()
        mins = minima_at(scan, d)
        for r in mins.itertuples():
            space = tuple(int(p) for p in getattr(r, col.SPACE))
            n, idx = annihilation(space, np.asarray(getattr(r, col.X)), args.n_max)
            rows.append({"d": d, "type": getattr(r, col.TYPE), "isotropy": getattr(r, col.ISOTROPY),
                         "loss": float(getattr(r, col.LOSS)), "blocks": len(space), "annihilated_by": n,
                         "split_index_n1": idx[0]})
        new = new_minima(d) if args.new else None
        per_d.append({"d": d, "spurious minima": len(mins),
                      "annihilated by 1 neuron": sum(1 for q in rows if q["d"] == d and q["annihilated_by"] == 1),
                      "new minima at k = d + 1": "; ".join(new) if new else ("none" if args.new else "not searched"),
                      "seconds": round(time.perf_counter() - t0, 1)})
        print(per_d[-1], flush=True)
    df = pd.DataFrame(rows)
    if args.out:
        df.to_parquet(args.out)
    print("\n| d | spurious minima at k = d | annihilated by one more neuron | smallest split index (n = 1) "
          "| new spurious minima at k = d + 1: isotropy, loss (λ_min) |")
    print("|---:|---:|---:|---|---|")
    for p in per_d:
        g = df[df["d"] == p["d"]]
        idx = sorted(set(g["split_index_n1"])) if len(g) else []
        print(f"| {p['d']} | {p['spurious minima']} | {p['annihilated by 1 neuron']} | "
              f"{', '.join(map(str, idx)) or '–'} | {p['new minima at k = d + 1']} |")
    print("\n| type | blocks | d with a spurious minimum of the type | minima | extra neurons that annihilate "
          "every one |")
    print("|---|---:|---|---:|---|")
    for typ, g in df.groupby("type", sort=False):
        ns = sorted({"> n_max" if pd.isna(v) else int(v) for v in g["annihilated_by"]}, key=str)
        ds = sorted(set(g["d"]))
        print(f"| {typ} | {int(g['blocks'].iloc[0])} | {ds[0]}…{ds[-1]} ({len(ds)}) | {len(g)} | "
              f"{', '.join(map(str, ns))} |")


if __name__ == "__main__":
    main()
