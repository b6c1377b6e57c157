#!/usr/bin/env python3
"""Benchmark: cluster N synthetic end points (group-orbit members of a few known points, plus noise).

Points are made in chunks (as a sweep makes them), each chunk is clustered, and the chunks' representatives
are clustered again — the sweep's two-level scheme. Prints a table and writes ``bench_cluster.json``.

    python scripts/bench_cluster.py                 # 10⁶ points, k = d = 8, 5 orbits
    python scripts/bench_cluster.py --n 20000       # quick
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from jaxsym.symmetry.orbits import cluster


def block_point(blocks: list[int], rng: np.random.Generator) -> np.ndarray:
    b = np.repeat(np.arange(len(blocks)), blocks)
    c = rng.normal(size=(len(blocks), len(blocks)))
    W = c[b][:, b].copy()
    np.fill_diagonal(W, rng.normal(size=len(blocks))[b])
    return W


def members(bases: np.ndarray, which: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """``g·bases[which]`` for uniformly random ``g = (π, ρ)``, vectorised, plus Gaussian noise."""
    n, k, d = len(which), bases.shape[1], bases.shape[2]
    pi = np.argsort(rng.random((n, k)), axis=1)
    rho = np.argsort(rng.random((n, d)), axis=1)
    W = np.take_along_axis(bases[which], pi[:, :, None], axis=1)
    W = np.take_along_axis(W, rho[:, None, :], axis=2)
    return W + rng.normal(scale=noise, size=W.shape)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--noise", type=float, default=1e-9)
    ap.add_argument("--out", default="bench_cluster.json")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    k = a.k
    shapes = [[k], [k - 1, 1], [k - 2, 2], [k - 2, 1, 1], [1] * k]
    bases = np.stack([block_point(s, rng) for s in shapes])
    t0 = time.perf_counter()
    t_make = 0.0
    reps, counts, truth = [], [], []
    for start in range(0, a.n, a.chunk):
        n = min(a.chunk, a.n - start)
        tm = time.perf_counter()
        which = rng.integers(0, len(bases), n)
        Ws = members(bases, which, rng, a.noise)
        t_make += time.perf_counter() - tm
        cl = cluster(Ws, tol=1e-6, order=np.arange(start, start + n))
        assert len(set(zip(cl.labels.tolist(), which.tolist()))) == len(cl.reps), "a chunk mixed orbits"
        reps.append(Ws[cl.reps])
        counts.append(cl.counts)
        truth.append(which[cl.reps])
    merged = cluster(np.concatenate(reps), tol=1e-6, weights=np.concatenate(counts))
    total = time.perf_counter() - t0 - t_make
    truth = np.concatenate(truth)
    pure = len(set(zip(merged.labels.tolist(), truth.tolist()))) == len(merged.reps)
    result = {"points": a.n, "k": k, "d": k, "true_orbits": len(bases), "found_orbits": len(merged.reps),
              "pure": pure, "cluster_seconds": round(total, 2), "points_per_second": round(a.n / total),
              "counts": sorted(merged.counts.tolist(), reverse=True), "machine": platform.processor() or
              platform.machine(), "chunk": a.chunk}
    print("| points | k = d | true orbits | found | pure | cluster time (s) | points/s |")
    print("|---:|---:|---:|---:|---|---:|---:|")
    print(f"| {a.n:,} | {k} | {len(bases)} | {len(merged.reps)} | {pure} | {total:.1f} | {a.n / total:,.0f} |")
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
