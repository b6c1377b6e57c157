#!/usr/bin/env python3
"""Benchmark harness: the jaxsym engine against baselines and the machine's limit, in one run.

Measures (section 0 in child processes, the rest in this one):

0. **certified runs/s on the published cells** (``k = d`` in ``--published-ks``, step 5/k, ``--published-runs``
   runs per cell, budget 20000 steps): (a) jaxsym's default protocol (compaction and hand-off), (b) jaxsym's
   full-length protocol (``train.protocol = "full"``), both whole sweeps to ``minima.parquet``, each in a new
   Python process (what one ``jaxsym sweep`` gets): cold (an empty cache: tracing, lowering, compiling) and
   warm (programs from JAX's persistent compilation cache and jaxsym's stored programs); (c) the published
   protocol one run at a time in NumPy: float64 gradient descent with step 5/k until ‖∇F‖ ≤ 1e-12
   (closed-form gradient), then the loss and the smallest Hessian eigenvalue (``--numpy-runs`` runs per
   cell, the same initial points). Also the compaction efficiency (steps the runs needed / slot-steps executed)
   per cell.

1. **run-steps/s** (one gradient step of one run) for ``k = d`` in ``--ks``, float32 and float64, of
   - ``engine``: jaxsym's training engine (``jit(vmap(...))`` of the closed-form step, optax SGD);
   - ``numpy``: a per-run NumPy loop with the same closed-form gradient (how published code runs);
   - ``naive_jax``: ``vmap(jax.grad(loss))`` of the plain loss formula made NaN-safe, optax SGD, jitted
     with the steps in a ``lax.fori_loop`` (the strongest naive variant);
   - ``torch``: batched PyTorch autograd of the same formula (skipped when torch is absent).
2. **the machine's limit**: FLOP/s of a large dense matmul, and the engine's achieved FLOP/s as a fraction
   of it. FLOPs per run-step are counted analytically (see :func:`step_flops`).
3. **time to a certified table**: wall time from start to ``minima.parquet`` for one ``k = d`` cell
   (``--table-k``, ``--table-runs``, ``--table-steps``): jaxsym's sweep (training, float64 polish,
   certificate, clustering, isotropy, spectra) against a baseline pipeline (naive JAX training, then a
   per-point SciPy ``trust-exact`` polish with the NumPy closed forms, NumPy ``eigvalsh`` and grouping by
   rounded loss).

Timings use ``jax.block_until_ready``, exclude compilation (a warm-up call first) and report the median of
``--repeats``. Prints tables and writes ``bench.json``.

    python scripts/bench.py                                  # the full benchmark (tens of minutes on 2 cores)
    python scripts/bench.py --only-published                 # just section 0 (a few minutes)
    python scripts/bench.py --ks 6 10 --table-runs 200 --table-steps 500 --repeats 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsym import config
from jaxsym.config import TrainConfig
from jaxsym.engine.descent import make_train_from
from jaxsym.sweep.driver import run_sweep

TWO_PI = 2 * np.pi


# ---------------------------------------------------------------------------------------------------
# FLOP count of one engine step
# ---------------------------------------------------------------------------------------------------
def step_flops(k: int, d: int, m: int) -> int:
    """FLOPs of one training step of one run (SGD), counted from ``jaxsym.landscape.model.make_train_grad``:

    - row norms and unit rows: 3·k·d;
    - Gram product ``Ŵ Uᵀ``, (k × d)·(d × (k+m)): 2·k·(k+m)·d;
    - clip, diagonal, ``S = √(1 − C²)``, ``Θ = arccos C``, ``(π − Θ)·N``: 8·k·(k+m) (arccos and √ as 1 each);
    - ``r = S N / ‖w‖``: 2·k·(k+m) + k;
    - the second product ``((π − Θ) N) U``, (k × (k+m))·((k+m) × d): 2·k·(k+m)·d;
    - ``r ⊙ W``, the sum, the 1/2π scale and the SGD update: 5·k·d;
    - the gradient norm for the stopping test: 2·k·d.
    """
    km = k * (k + m)
    return 3 * k * d + 4 * km * d + 10 * km + k + 7 * k * d


# ---------------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------------
def numpy_grad(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Closed-form gradient with NumPy for one run (the same formula as the engine)."""
    n = np.linalg.norm(W, axis=1)
    vn = np.linalg.norm(V, axis=1)
    U = np.concatenate([W / n[:, None], V / vn[:, None]])
    N = np.concatenate([n, -vn])
    C = np.clip((W / n[:, None]) @ U.T, -1, 1)
    np.fill_diagonal(C, 1.0)
    S = np.sqrt(np.maximum(1 - C * C, 0))
    T = np.arccos(C)
    r = (S @ N) / n
    return (r[:, None] * W + ((np.pi - T) * N) @ U) / TWO_PI


def numpy_hessian(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Closed-form Hessian with NumPy for one point (the baseline certification); the formulas of
    ``jaxsym.landscape.model`` (module docstring), written directly in NumPy."""
    k, d = W.shape
    n = np.linalg.norm(W, axis=1)
    u = W / n[:, None]

    def geom(B: np.ndarray) -> tuple:
        nb = np.linalg.norm(B, axis=1)
        ub = B / nb[:, None]
        c = np.clip(u @ ub.T, -1, 1)
        p = ub[None, :, :] - c[:, :, None] * u[:, None, :]
        s = np.linalg.norm(p, axis=2)
        return nb, c, p, s, np.arctan2(s, c)

    def self_blocks(B: np.ndarray) -> np.ndarray:
        nb, _, p, s, _ = geom(B)
        w = np.where(s > 1e-15, nb[None, :] / np.where(s > 1e-15, s, 1), 0)
        pp = np.einsum("nm,nmd,nme->nde", w, p, p)
        tang = np.eye(d) - u[:, :, None] * u[:, None, :]
        return ((s @ nb)[:, None, None] * tang + pp) / (TWO_PI * n[:, None, None])

    _, c, p, s, t = geom(W)
    uu = u[:, None, :, None] * u[:, None, None, :]
    pp = np.where(s[..., None, None] > 1e-15, p[..., :, None] * p[..., None, :] /
                  np.where(s > 1e-15, s, 1)[..., None, None], 0)
    up = u[:, None, :, None] * p[..., None, :]
    blocks = ((np.pi - t)[..., None, None] * np.eye(d) + (s * c)[..., None, None] * uu - c[..., None, None] * pp
              + s[..., None, None] * (up + np.swapaxes(up, -1, -2))) / TWO_PI
    blocks[np.arange(k), np.arange(k)] += self_blocks(W) - self_blocks(V)
    return blocks.transpose(0, 2, 1, 3).reshape(k * d, k * d)


def numpy_loss(W: np.ndarray, V: np.ndarray) -> float:
    def kern(A: np.ndarray, B: np.ndarray) -> np.ndarray:
        na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
        c = np.clip((A @ B.T) / np.outer(na, nb), -1, 1)
        t = np.arccos(c)
        return np.outer(na, nb) * (np.sqrt(1 - c * c) + (np.pi - t) * c) / TWO_PI
    return float(0.5 * kern(W, W).sum() - kern(W, V).sum() + 0.5 * kern(V, V).sum())


def naive_loss(W: jax.Array, V: jax.Array) -> jax.Array:
    """The plain formula, made NaN-safe for autodiff: cosines clipped away from ±1, the diagonal
    replaced by its known value ‖w‖²/2."""
    def kern(A: jax.Array, B: jax.Array, same: bool) -> jax.Array:
        na, nb = jnp.linalg.norm(A, axis=1), jnp.linalg.norm(B, axis=1)
        c = jnp.clip((A @ B.T) / jnp.outer(na, nb), -1 + 1e-6, 1 - 1e-6)
        t = jnp.arccos(c)
        out = jnp.outer(na, nb) * (jnp.sqrt(1 - c * c) + (jnp.pi - t) * c) / TWO_PI
        if same:
            out = jnp.where(jnp.eye(A.shape[0], dtype=bool), 0.5 * jnp.outer(na, nb), out)
        return out
    return 0.5 * kern(W, W, True).sum() - kern(W, V, False).sum() + 0.5 * kern(V, V, True).sum()


def make_naive_train(V: jax.Array, lr: float, steps: int) -> Callable[[jax.Array], jax.Array]:
    opt = optax.sgd(lr)
    grad = jax.vmap(jax.grad(naive_loss), in_axes=(0, None))

    @jax.jit
    def train(W0: jax.Array) -> jax.Array:
        def body(_: int, carry: tuple) -> tuple:
            W, s = carry
            u, s = opt.update(grad(W, V), s, W)
            return optax.apply_updates(W, u), s
        return jax.lax.fori_loop(0, steps, body, (W0, opt.init(W0)))[0]
    return train


# ---------------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------------
def median_time(fn: Callable[[], object], repeats: int) -> float:
    jax.block_until_ready(fn())  # warm-up (compilation)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def batch_for(k: int) -> int:
    return 1024 if k <= 20 else (256 if k <= 50 else 64)


def start_points(k: int, batch: int, dtype: str) -> np.ndarray:
    return (np.random.default_rng(0).normal(size=(batch, k, k)) / np.sqrt(k)).astype(dtype)


def bench_engine(k: int, dtype: str, steps: int, repeats: int, *, invariant: bool = True,
                 batch: int | None = None) -> float:
    """Run-steps/s of the engine's vmapped training on ``batch`` runs (default :func:`batch_for`), compiled as
    sweeps compile it (``invariant``: with :func:`jaxsym.numerics.parallel.invariant_jit`, so that a run's arithmetic
    does not depend on its batch) or with XLA's defaults."""
    from jaxsym.numerics.parallel import invariant_jit

    cfg = TrainConfig(steps=steps, grad_tol=0.0, dtype=dtype, learning_rate=0.05)
    W0 = jnp.asarray(start_points(k, batch or batch_for(k), dtype))
    train = jax.vmap(make_train_from(cfg, jnp.eye(k, dtype=dtype)))
    train = invariant_jit(train) if invariant else jax.jit(train)
    return W0.shape[0] * steps / median_time(lambda: train(W0).W, repeats)


def bench_products(ks: list[int], steps: int, repeats: int, batch: int = 512) -> list[dict]:
    """Run-steps/s of the training step's two small products as matrix products (``dot``) and as
    broadcast-and-sum (``sum``), each compiled as sweeps compile it (:func:`jaxsym.numerics.parallel.invariant_jit`),
    float32, plain gradient descent in a ``fori_loop``, ``batch`` runs; and whether a run's end point is bit for bit
    the same in batches of 1, 7 and 128 as in the batch (batch invariance). ``auto`` is what the engine uses
    (:func:`jaxsym.landscape.model.make_train_grad`)."""
    from jaxsym.landscape import model
    from jaxsym.numerics.parallel import invariant_jit

    rows = []
    for k in ks:
        row: dict = {"k": k, "auto": "sum" if k * 2 * k * k <= model.SUM_PRODUCTS_MAX else "dot"}
        for products in ("dot", "sum"):
            grad = model.make_train_grad(jnp.eye(k, dtype=jnp.float32), products)
            lr = np.float32(2.5 / k)
            train = invariant_jit(jax.vmap(lambda W, grad=grad, lr=lr: jax.lax.fori_loop(
                0, steps, lambda _, W: W - lr * grad(W), W)))
            W0 = jnp.asarray(start_points(k, batch, "float32"))
            row[products] = batch * steps / median_time(lambda train=train, W0=W0: train(W0), repeats)
            ref = np.asarray(train(W0))
            row[f"{products}_invariant"] = all(np.array_equal(np.asarray(train(W0[:b])), ref[:b], equal_nan=True)
                                               for b in (1, 7, 128))
        rows.append(row)
        print(f"  k={k}: dot {row['dot']:.3g}, sum {row['sum']:.3g} run-steps/s", flush=True)
    import pandas as pd

    from jaxsym.report.summary import markdown

    table = pd.DataFrame({"k = d": [r["k"] for r in rows], "dot (run-steps/s)": [r["dot"] for r in rows],
                          "sum": [r["sum"] for r in rows],
                          "sum / dot": [f"{r['sum'] / r['dot']:.2f}×" for r in rows],
                          "batch-invariant (dot, sum)": [f"{r['dot_invariant']}, {r['sum_invariant']}" for r in rows],
                          "engine uses": [r["auto"] for r in rows]})
    print("\n" + markdown(table, ".3g"))
    return rows


def bench_numpy(k: int, dtype: str, steps: int, repeats: int) -> float:
    runs = 4
    W0 = start_points(k, runs, dtype)
    V = np.eye(k, dtype=dtype)

    def go() -> None:
        for W in W0:
            W = W.copy()
            for _ in range(steps):
                W -= 0.05 * numpy_grad(W, V)
    return runs * steps / median_time(go, repeats)


def bench_naive(k: int, dtype: str, steps: int, repeats: int) -> float:
    W0 = jnp.asarray(start_points(k, batch_for(k), dtype))
    train = make_naive_train(jnp.eye(k, dtype=dtype), 0.05, steps)
    return W0.shape[0] * steps / median_time(lambda: train(W0), repeats)


def bench_torch(k: int, dtype: str, steps: int, repeats: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    W = torch.tensor(start_points(k, batch_for(k), dtype), dtype=tdtype, requires_grad=True)
    V = torch.eye(k, dtype=tdtype)

    def loss(W: torch.Tensor) -> torch.Tensor:
        def kern(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
            na, nb = A.norm(dim=-1), B.norm(dim=-1)
            outer = na[..., :, None] * nb[..., None, :]
            c = ((A @ B.transpose(-1, -2)) / outer).clamp(-1 + 1e-6, 1 - 1e-6)
            return outer * (torch.sqrt(1 - c * c) + (torch.pi - torch.arccos(c)) * c) / TWO_PI
        return 0.5 * kern(W, W).sum() - kern(W, V.expand_as(W)).sum()

    opt = torch.optim.SGD([W], lr=0.05)

    def go() -> None:
        for _ in range(steps):
            opt.zero_grad()
            loss(W).backward()
            opt.step()
    return W.shape[0] * steps / median_time(go, repeats)


def matmul_flops(dtype: str, n: int, repeats: int) -> float:
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), dtype)
    f = jax.jit(lambda a: a @ a)
    return 2 * n**3 / median_time(lambda: f(a), repeats)


# ---------------------------------------------------------------------------------------------------
# Certified runs per second on the published cells
# ---------------------------------------------------------------------------------------------------
def published_config(ks: list[int], runs: int, protocol: str) -> config.SweepConfig:
    """``fast``/``full``: float32 descent (the two protocols), chunks in as many threads as the sweep chooses
    (:func:`jaxsym.sweep.plan.workers_for`); ``fast-1``: the default protocol one chunk at a time; ``float64``: the
    published protocol run by jaxsym (float64 descent to ‖∇F‖ ≤ 1e-12, compacted, no hand-off)."""
    workers = None
    if protocol == "fast-1":  # the default protocol with one chunk at a time (one core for XLA's programs)
        protocol, workers = "fast", 1
    train = {"learning_rate": "5/k", "steps": 20000, "protocol": protocol}
    if protocol == "float64":
        train = {"learning_rate": "5/k", "steps": 200000, "protocol": "fast", "dtype": "float64", "grad_tol": 1e-12,
                 "handoff_from": 1e-12}
    return config.from_dict({"name": f"published-{protocol}", "seed": 0, "runs": runs, "grid": {"d": ks, "k": "d"},
                             "train": train, **({"workers": workers} if workers else {})})


TIMES = ("descent_s", "handoff_s", "per_run_s", "polish_s", "cluster_s", "write_s")  # per-chunk, sweep log


def sweep_rate(cfg: config.SweepConfig) -> tuple[float, dict[int, dict]]:
    """(certified runs/s of a whole sweep, per-k statistics from its log: descent, hand-off counts and the time
    of each phase of its chunks; under ``"all"`` the sweep's wall time and its time outside chunks — starting,
    building programs, merging)."""
    import ast
    import re

    import pandas as pd

    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        run_sweep(cfg, out, progress=False)
        dt = time.perf_counter() - t
        runs = pd.read_parquet(os.path.join(out, "runs.parquet"))
        stats: dict = {}
        chunk_s = 0.0
        with open(os.path.join(out, "sweep.log")) as f:
            for line in f:
                m = re.search(r" d\d+-k(\d+) runs \d+\.\.\d+ done in ([\d.]+)s", line)
                if m and "{" in line:
                    k, secs = int(m.group(1)), float(m.group(2))
                    chunk_s += secs
                    got = ast.literal_eval(line[line.index("{"):].strip())
                    st = stats.setdefault(k, {})
                    for key, v in got.items():
                        st[key] = st.get(key, 0) + v if isinstance(v, (int, float)) and key != "efficiency" else v
                    st["chunk_s"] = st.get("chunk_s", 0.0) + secs
        certified = int(runs["status"].isin(["global", "spurious", "saddle", "degenerate"]).sum())
    for k, st in stats.items():
        st["runs"] = int((runs["k"] == k).sum())
        st["mean_steps"] = float(runs.loc[runs["k"] == k, "steps"].mean())
        st["efficiency"] = st.get("needed_steps", 0) / max(st.get("executed_slot_steps", 1), 1)
    stats["all"] = {"wall_s": dt, "chunk_s": chunk_s, "certified": certified}
    return certified / dt, stats


def numpy_published(k: int, runs: int, max_steps: int = 1_000_000, first: int = 0) -> tuple[float, list[str]]:
    """The published protocol for runs ``first … first + runs − 1`` of cell k = d, one at a time:
    (seconds, statuses)."""
    from jaxsym.engine.descent import cell_key, init_weights, run_key

    V = np.eye(k)
    lr = 5 / k
    base = cell_key(0, k, k)
    starts = [np.asarray(init_weights(run_key(base, r), k, k, 1.0, jnp.float32), np.float64)
              for r in range(first, first + runs)]
    statuses = []
    t = time.perf_counter()
    for W in starts:
        for _ in range(max_steps):
            g = numpy_grad(W, V)
            if np.linalg.norm(g) <= 1e-12:
                break
            W = W - lr * g
        if numpy_loss(W, V) <= 1e-8:
            statuses.append("global")
        else:
            lam = np.linalg.eigvalsh(numpy_hessian(W, V))[0]
            statuses.append("spurious" if lam > 1e-6 else "saddle" if lam < -1e-6 else "degenerate")
    return time.perf_counter() - t, statuses


def sweep_rate_in_new_process(protocol: str, ks: list[int], runs: int, cache: str) -> tuple[float, dict]:
    """:func:`sweep_rate` in a fresh Python process with compilation cache and stored programs in ``cache``:
    what one ``jaxsym sweep`` gets (nothing is kept in memory from an earlier sweep)."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--sweep-rate", protocol, "--published-ks", *map(str, ks),
                          "--published-runs", str(runs), "--cache", cache], check=True, capture_output=True, text=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return got["rate"], {(int(k) if k != "all" else k): v for k, v in got["stats"].items()}


def sweep_in_new_process(raw: dict, cache: str) -> dict:
    """Run the sweep ``raw`` (a config as a dict) in a fresh Python process with compilation cache and stored
    programs in ``cache``: ``{"wall_s", "compiles", "compile_s"}`` (programs XLA compiled, i.e. missed in the
    persistent cache, and seconds spent compiling or loading programs, from JAX's monitoring events)."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--sweep-config", json.dumps(raw), "--cache", cache], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _sweep_config_here(raw: dict) -> dict:
    from jax._src import monitoring

    compiles, misses = [], []  # XLA compilations or loads from the persistent cache; programs really compiled
    monitoring.register_event_duration_secs_listener(
        lambda event, secs, **kw: compiles.append(secs) if event == "/jax/core/compile/backend_compile_duration"
        else None)
    monitoring.register_event_listener(
        lambda event, **kw: misses.append(1) if event == "/jax/compilation_cache/cache_misses" else None)
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        run_sweep(config.from_dict(raw), out, progress=False)
        return {"wall_s": time.perf_counter() - t, "compiles": len(misses), "compile_s": sum(compiles)}


def bench_reuse(k: int = 8, runs: int = 300, lrs: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7)) -> dict:
    """Compiled programs shared by cells that differ only in runtime values: a cold sweep of one cell at
    k = d = ``k``, then (new process, empty caches) a cold sweep over ``len(lrs)`` step sizes, then (new process,
    that cache) the same grid with another seed — each with its wall time and XLA compilations."""
    raw = {"name": "reuse", "seed": 0, "runs": runs, "grid": {"d": [k], "k": "d"}, "workers": 1}
    grid = {**raw, "grid": {**raw["grid"], "learning_rate": list(lrs)}}
    out = {}
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as many:
        out["one cell, cold"] = sweep_in_new_process({**raw, "train": {"learning_rate": lrs[0]}}, one)
        out[f"{len(lrs)} step sizes, cold"] = sweep_in_new_process(grid, many)
        out[f"{len(lrs)} step sizes, another seed"] = sweep_in_new_process({**grid, "seed": 1}, many)
    print(f"\nprograms shared across runtime values (k = d = {k}, {runs} runs per cell, one chunk at a time):\n")
    print("| sweep | cells | wall s | programs compiled | compiling or loading s |")
    print("|---|---:|---:|---:|---:|")
    for name, r in out.items():
        cells = 1 if name.startswith("one") else len(lrs)
        print(f"| {name} | {cells} | {r['wall_s']:.1f} | {r['compiles']} | {r['compile_s']:.1f} |")
    return out


def _numpy_share(job: tuple[int, int, int]) -> int:
    k, runs, first = job
    numpy_published(k, runs, first=first)
    return runs


def numpy_published_on_every_core(ks: list[int], runs: int, cores: int) -> float:
    """The published protocol with one NumPy process per core, each running its share of every cell's runs
    one at a time: certified runs/s of the whole (what a user of the published code gets from the machine)."""
    import multiprocessing

    share = -(-runs // cores)
    jobs = [(k, min(share, runs - a), a) for k in ks for a in range(0, runs, share)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(cores) as pool:
        pool.map(_numpy_share, jobs[:cores])  # start the processes and import NumPy/JAX before timing
        t = time.perf_counter()
        n = sum(pool.map(_numpy_share, jobs))
        return n / (time.perf_counter() - t)


def bench_published(ks: list[int], runs: int, numpy_runs: int, protocols: list[str]) -> dict:
    from jaxsym.sweep.plan import workers_for

    workers = workers_for(config.from_dict({"name": "w", "seed": 0, "runs": 1, "grid": {"d": [2], "k": "d"}}))
    out: dict = {"ks": ks, "runs": runs, "numpy_runs": numpy_runs, "workers": workers}
    for protocol in protocols:
        cache = tempfile.mkdtemp(prefix="jaxsym-xla-")  # each protocol's cold sweep starts from empty caches
        cold, cold_stats = sweep_rate_in_new_process(protocol, ks, runs, cache)
        warm, stats = sweep_rate_in_new_process(protocol, ks, runs, cache)
        out[protocol] = {"cold": cold, "warm": warm, "stats": stats, "cold_stats": cold_stats}
        print(f"  jaxsym {protocol}: {cold:.0f} certified runs/s cold, {warm:.0f} warm", flush=True)
    total_t, total_n, per_k = 0.0, 0, {}
    for k in ks:
        dt, st = numpy_published(k, numpy_runs)
        total_t += dt
        total_n += numpy_runs
        per_k[k] = {"seconds": dt, "spurious": st.count("spurious") / numpy_runs}
        print(f"  numpy published protocol k={k}: {numpy_runs / dt:.1f} runs/s", flush=True)
    out["numpy"] = {"rate": total_n / total_t, "per_k": per_k}
    out["numpy_cores"] = {"cores": workers, "rate": numpy_published_on_every_core(ks, numpy_runs, workers)}
    print(f"  numpy published protocol, {workers} processes: {out['numpy_cores']['rate']:.1f} runs/s", flush=True)
    return out


def bench_scale(ks_runs: list[tuple[int, int]], numpy_runs: int) -> dict:
    """Warm certified runs/s of large cells (a small sweep of the same cell first fills the caches, in another
    process), against the published protocol in NumPy at the same k."""
    cache = tempfile.mkdtemp(prefix="jaxsym-xla-")
    out: dict = {}
    for k, runs in ks_runs:
        sweep_rate_in_new_process("fast", [k], 64, cache)  # compile once
        warm, stats = sweep_rate_in_new_process("fast", [k], runs, cache)
        dt, _ = numpy_published(k, numpy_runs)
        out[k] = {"runs": runs, "warm": warm, "stats": stats, "numpy": numpy_runs / dt, "numpy_runs": numpy_runs}
        print(f"  k = d = {k}, {runs} runs: {warm:.0f} certified runs/s warm; NumPy published protocol "
              f"{numpy_runs / dt:.2f} runs/s ({numpy_runs} runs): {warm / (numpy_runs / dt):.0f}×", flush=True)
    return out


def print_shares(title: str, stats: dict, workers: int) -> None:
    """Where a sweep's time went, in core-seconds: chunks run on ``workers`` cores at once, so their parts add up
    to at most ``workers × wall``. Parts: descent (compilation of a cell's programs included on its first chunk),
    the hand-off (per orbit and per-run paths), the end-of-chunk polish, clustering and spectra, writing chunks,
    and the rest (start, building programs, the merge, and cores idle while another chunk finishes)."""
    parts = {name: sum(st.get(name, 0.0) for k, st in stats.items() if k != "all") for name in TIMES}
    wall = stats["all"]["wall_s"]
    budget = workers * wall
    parts["rest (start, build, merge, idle cores)"] = budget - sum(parts.values())
    per_orbit = sum(st.get("per_orbit", 0) for k, st in stats.items() if k != "all")
    solved = sum(st.get("solved", 0) for k, st in stats.items() if k != "all")
    print(f"\n{title}: {wall:.1f} s wall × {workers} cores = {budget:.1f} core-seconds; hand-off per orbit "
          f"{per_orbit} runs, per-run path {solved} runs")
    print("| part | core-seconds | share |")
    print("|---|---:|---:|")
    for name, secs in parts.items():
        print(f"| {name.removesuffix('_s')} | {secs:.1f} | {100 * secs / budget:.0f}% |")


def print_published(r: dict) -> None:
    npy, w, par = r["numpy"]["rate"], r["workers"], r["numpy_cores"]["rate"]
    print(f"\ncertified runs/s, published cells k = d = {r['ks'][0]}…{r['ks'][-1]}, step 5/k, {r['runs']} runs "
          f"per cell (NumPy: {r['numpy_runs']} per cell):\n")
    print("| protocol | certified runs/s (cold) | (warm) | vs NumPy published (cold) | (warm) |")
    print("|---|---:|---:|---:|---:|")
    names = {"fast": f"(a) jaxsym default (compaction + hand-off per orbit; {w} chunks at once)",
             "fast-1": "(a₁) the same, one chunk at a time", "full": "(b) jaxsym full length",
             "float64": "(d) jaxsym running the published protocol (float64 to 1e-12, compacted)"}
    for key, name in names.items():
        if key in r:
            x = r[key]
            print(f"| {name} | {x['cold']:.0f} | {x['warm']:.0f} | {x['cold'] / npy:.1f}× | {x['warm'] / npy:.1f}× |")
    print(f"| (c) published protocol, NumPy float64, one run at a time | {npy:.1f} | {npy:.1f} | 1.0× | 1.0× |")
    print(f"| (c′) the same in {w} NumPy processes at once | {par:.1f} | {par:.1f} | {par / npy:.1f}× | "
          f"{par / npy:.1f}× |")
    if "fast" not in r:
        return
    fast = r["fast"]
    print(f"\n(a) / (c′), both using {w} cores: {fast['warm'] / par:.1f}× warm")
    print("\n| k = d | runs | mean steps needed | slot-steps executed | compaction efficiency | handed off | "
          "per orbit | per-run path |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, st in sorted((k, st) for k, st in fast["stats"].items() if k != "all"):
        print(f"| {k} | {st['runs']} | {st['mean_steps']:.0f} | {st['executed_slot_steps']} | "
              f"{100 * st['efficiency']:.1f}% | {st['handed_off']} | {st.get('per_orbit', 0)} | "
              f"{st.get('solved', 0)} |")
    print_shares("(a) cold", fast["cold_stats"], w)
    print_shares("(a) warm", fast["stats"], w)
    cold, warm = fast["cold_stats"]["all"]["wall_s"], fast["stats"]["all"]["wall_s"]
    print(f"\ncompilation and first use (cold wall − warm wall, same runs): {cold - warm:.1f} s of {cold:.1f} s "
          f"({100 * (cold - warm) / cold:.0f}% of a first sweep)")


# ---------------------------------------------------------------------------------------------------
# Time to a certified table
# ---------------------------------------------------------------------------------------------------
def table_engine(k: int, runs: int, steps: int) -> float:
    cfg = config.from_dict({"name": "bench", "seed": 0, "runs": runs, "grid": {"d": [k], "k": "d"},
                            "train": {"steps": steps, "learning_rate": 0.1, "grad_tol": 1e-6}})
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        run_sweep(cfg, out, progress=False)
        return time.perf_counter() - t


def table_baseline(k: int, runs: int, steps: int) -> float:
    from scipy.optimize import minimize

    V = np.eye(k)
    t = time.perf_counter()
    key = jax.random.key(0)
    W0 = jax.random.normal(key, (runs, k, k), jnp.float32) / np.sqrt(k)
    W = np.asarray(make_naive_train(jnp.eye(k, dtype=jnp.float32), 0.1, steps)(W0), np.float64)
    rows = []
    for w in W:
        res = minimize(lambda x: numpy_loss(x.reshape(k, k), V), w.ravel(), method="trust-exact",
                       jac=lambda x: numpy_grad(x.reshape(k, k), V).ravel(),
                       hess=lambda x: numpy_hessian(x.reshape(k, k), V), options={"gtol": 1e-10})
        Wp = res.x.reshape(k, k)
        lam = np.linalg.eigvalsh(numpy_hessian(Wp, V))[0]
        rows.append((round(numpy_loss(Wp, V), 8), lam))
    _distinct = {r[0] for r in rows}
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", type=int, nargs="+", default=[6, 10, 20, 50, 100])
    ap.add_argument("--steps", type=int, default=200, help="steps per throughput measurement")
    ap.add_argument("--numpy-steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--matmul-n", type=int, default=2048)
    ap.add_argument("--table-k", type=int, default=10)
    ap.add_argument("--table-runs", type=int, default=10_000)
    ap.add_argument("--table-steps", type=int, default=10_000)
    ap.add_argument("--skip-table", action="store_true")
    ap.add_argument("--published-ks", type=int, nargs="+", default=[6, 7, 8, 9, 10])
    ap.add_argument("--published-runs", type=int, default=1000)
    ap.add_argument("--numpy-runs", type=int, default=100)
    ap.add_argument("--only-published", action="store_true")
    ap.add_argument("--protocols", nargs="+", default=["fast", "fast-1", "full", "float64"],
                    choices=["fast", "fast-1", "full", "float64"])
    ap.add_argument("--scale", action="store_true", help="also warm runs/s at k = 10 and k = 20 at scale")
    ap.add_argument("--scale-runs", type=int, nargs=2, default=[20000, 5000])
    ap.add_argument("--scale-numpy-runs", type=int, default=20)
    ap.add_argument("--skip-published", action="store_true")
    ap.add_argument("--out", default="bench.json")
    ap.add_argument("--products", type=int, nargs="*", help="also: the step's products as dot vs sum at these k")
    ap.add_argument("--reuse", action="store_true", help="also: programs shared by cells differing in step size/seed")
    ap.add_argument("--sweep-config", help=argparse.SUPPRESS)  # internal: one sweep of this config in this process
    ap.add_argument("--sweep-rate", help=argparse.SUPPRESS)  # internal: one sweep_rate in this process, as JSON
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.sweep_config:
        from jaxsym.numerics.parallel import use_compilation_cache

        use_compilation_cache(a.cache)
        print(json.dumps(_sweep_config_here(json.loads(a.sweep_config))))
        return
    if a.sweep_rate:
        from jaxsym.numerics.parallel import use_compilation_cache

        use_compilation_cache(a.cache)
        rate, stats = sweep_rate(published_config(a.published_ks, a.published_runs, a.sweep_rate))
        print(json.dumps({"rate": rate, "stats": stats}))
        return

    dev = jax.devices()[0]
    info = {"device": f"{dev.platform}: {getattr(dev, 'device_kind', '')}", "devices": jax.device_count(),
            "cpu_count": os.cpu_count(), "machine": platform.machine(), "jax": jax.__version__}
    print(f"device: {info['device']} x{info['devices']}, {info['cpu_count']} CPUs, jax {jax.__version__}")
    result: dict = {"info": info, "throughput": [], "peak": {}, "table": {}}
    if not a.skip_published:
        result["published"] = bench_published(a.published_ks, a.published_runs, a.numpy_runs, a.protocols)
        print_published(result["published"])
    if a.products:
        result["products"] = bench_products(a.products, a.steps, a.repeats)
    if a.reuse:
        result["reuse"] = bench_reuse()
    if a.scale:
        result["scale"] = bench_scale([(10, a.scale_runs[0]), (20, a.scale_runs[1])], a.scale_numpy_runs)
    if a.only_published:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)
        return
    with jax.enable_x64(True):
        for dtype in ("float32", "float64"):
            peak = matmul_flops(dtype, a.matmul_n, a.repeats)
            result["peak"][dtype] = peak
            for k in a.ks:
                row = {"k": k, "d": k, "dtype": dtype, "batch": batch_for(k)}
                steps = a.steps if k <= 20 else max(10, a.steps // (k // 10))
                row["engine"] = bench_engine(k, dtype, steps, a.repeats)
                row["engine_xla_defaults"] = bench_engine(k, dtype, steps, a.repeats, invariant=False)
                row["numpy"] = bench_numpy(k, dtype, a.numpy_steps, a.repeats)
                row["naive_jax"] = bench_naive(k, dtype, steps, a.repeats)
                row["torch"] = bench_torch(k, dtype, max(5, steps // 10), a.repeats)
                flops = step_flops(k, k, k)
                row["flops_per_step"] = flops
                row["engine_gflops"] = row["engine"] * flops / 1e9
                row["fraction_of_peak"] = row["engine"] * flops / peak
                result["throughput"].append(row)
                print(f"  k={k:4d} {dtype}: engine {row['engine']:.3g} run-steps/s", flush=True)

    print("\n| k = d | dtype | engine run-steps/s | (XLA defaults: YNNPACK) | NumPy loop | naive JAX | PyTorch | "
          "engine / NumPy | engine / naive JAX | engine GFLOP/s | of matmul peak |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in result["throughput"]:
        torch_s = f"{r['torch']:.3g}" if r["torch"] else "n/a (no torch)"
        print(f"| {r['k']} | {r['dtype']} | {r['engine']:.3g} | {r['engine_xla_defaults']:.3g} | {r['numpy']:.3g} | "
              f"{r['naive_jax']:.3g} | "
              f"{torch_s} | {r['engine'] / r['numpy']:.1f}× | {r['engine'] / r['naive_jax']:.1f}× | "
              f"{r['engine_gflops']:.2f} | {100 * r['fraction_of_peak']:.1f}% |")
    for dtype, p in result["peak"].items():
        print(f"matmul peak ({a.matmul_n}², {dtype}): {p / 1e9:.1f} GFLOP/s")

    if not a.skip_table:
        k, runs, steps = a.table_k, a.table_runs, a.table_steps
        te = table_engine(k, runs, steps)
        tb = table_baseline(k, runs, steps)
        result["table"] = {"k": k, "runs": runs, "steps": steps, "engine_s": te, "baseline_s": tb}
        print(f"\ntime to a certified table, k = d = {k}, {runs} runs, {steps} steps: jaxsym {te:.1f} s, "
              f"baseline {tb:.1f} s, ratio {tb / te:.1f}×")
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
