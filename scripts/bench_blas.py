#!/usr/bin/env python3
"""Benchmark: the hand-off's host linear algebra on OpenBLAS's default threads and on one, with the cores busy.

A sweep's chunk workers run the float64 linear algebra of the hand-off (Cholesky factors, inverses, eigenvalues
of (k·d) × (k·d) Hessians) while XLA's threads and the other workers keep every core busy. This script plays
that: ``--busy`` processes spin on the cores (default: as many as there are cores), and meanwhile it times
``scipy.linalg.cho_factor``, ``numpy.linalg.inv`` and ``numpy.linalg.eigvalsh`` of a symmetric positive definite
matrix of each size, first on OpenBLAS's default threads, then under ``threadpoolctl.threadpool_limits(1)``
(what :func:`jaxsym.numerics.parallel.host_blas_one_thread` sets during a sweep). Also with the cores idle
(``--busy 0``). Prints a table and writes ``bench_blas.json``.

    python scripts/bench_blas.py                   # k = d = 10, 15, 18, 20 (matrices of 100 … 400)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_info, threadpool_limits


def _spin(stop: mp.Event) -> None:  # type: ignore[valid-type]
    x = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        for _ in range(100_000):
            x += 1


def _time(f, repeats: int) -> float:  # type: ignore[no-untyped-def]
    f()
    t = time.perf_counter()
    for _ in range(repeats):
        f()
    return (time.perf_counter() - t) / repeats


def measure(n: int, repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(n)
    A = rng.normal(size=(n, n))
    A = A @ A.T + n * np.eye(n)
    ops = {"cho_factor": lambda: scipy.linalg.cho_factor(A), "inv": lambda: np.linalg.inv(A),
           "eigvalsh": lambda: np.linalg.eigvalsh(A)}
    return {name: _time(f, repeats) for name, f in ops.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[10, 15, 18, 20])
    ap.add_argument("--busy", type=int, nargs="+", default=[0, os.cpu_count() or 1],
                    help="numbers of spinning processes to measure under")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default="bench_blas.json")
    args = ap.parse_args()
    default_threads = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    print(f"{os.cpu_count()} cores; OpenBLAS default threads {default_threads}")
    rows = []
    for busy in args.busy:
        stop = mp.Event()
        procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
        for p in procs:
            p.start()
        try:
            for k in args.ks:
                n = k * k
                default = measure(n, args.repeats)
                with threadpool_limits(limits=1, user_api="blas"):
                    one = measure(n, args.repeats)
                for op in default:
                    rows.append({"busy": busy, "k": k, "n": n, "op": op, "default_ms": 1e3 * default[op],
                                 "one_thread_ms": 1e3 * one[op]})
        finally:
            stop.set()
            for p in procs:
                p.join()
    print("| busy processes | k = d | matrix | operation | default threads (ms) | one thread (ms) | ratio |")
    print("|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['busy']} | {r['k']} | {r['n']}² | {r['op']} | {r['default_ms']:.2f} | {r['one_thread_ms']:.2f} "
              f"| {r['default_ms'] / r['one_thread_ms']:.1f}× |")
    with open(args.out, "w") as fh:
        json.dump({"cores": os.cpu_count(), "default_threads": default_threads, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
