#!/usr/bin/env python3
"""Benchmark of what only an accelerator shows: chunk sizes, float32 vs float64, batched ``eigh``, the
certificate's per-run programs, batch invariance, and certified runs/s of whole sweeps with more slots.

Runs on any backend (``--quick`` for a short look on a CPU); meant for a GPU. Each section prints a Markdown
table; everything is written to ``--out`` (JSON).

1. **engine**: run-steps/s of the plain batched engine (``jit(vmap(train))``, closed-form step, optax SGD) for
   ``k = d`` in ``--ks``, float32 and float64, batches 2^10 … 2^``--max-log2-batch``, skipping batches whose
   training state (:func:`jaxsym.sweep.plan.train_bytes_per_run`) would exceed ``--memory-gb``; an out-of-memory
   error ends the scan of that row.
2. **eigh**: symmetric eigenvalues of a batch of n×n matrices (n = k·d of the Hessians the certificate
   diagonalises), float32 and float64, vmapped (one batched call) and one matrix at a time (``lax.map``, how
   the certificate runs: its bits then do not depend on the batch): matrices per second.
3. **certificate**: per-run float64 programs of a sweep (hand-off test and polish, as built by
   :func:`jaxsym.sweep.closed_form.build`: one run at a time on a CPU, vmapped on an accelerator) on end points of a
   short descent, in runs/s, on the default device and on
   the host CPU.
4. **invariance**: the first runs of a batch trained alone and inside batches of growing size (float32, plain
   engine): are their weights bit-identical? (On a CPU they are, with
   :func:`jaxsym.numerics.parallel.invariant_jit`.)
5. **sweeps**: certified runs/s of whole sweeps of the published cells (k = d = 6…10, step 5/k, budget 20000,
   default protocol) with ``--slots`` compacting slots and chunks of ``--runs`` runs, each in a new process
   (cold: empty caches; warm: the second process).

    python scripts/bench_device.py                   # on a GPU: every section (about 8 minutes on an H100)
    python scripts/bench_device.py --quick           # a short look on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import bench_engine, median_time, published_config, start_points, sweep_rate

from jaxsym.config import TrainConfig
from jaxsym.engine.descent import make_train_from
from jaxsym.numerics.parallel import invariant_jit
from jaxsym.sweep.plan import train_bytes_per_run


def is_oom(e: Exception) -> bool:
    s = str(e)
    return "RESOURCE_EXHAUSTED" in s or "out of memory" in s.lower()


# ---------------------------------------------------------------------------------------------------
# 1. engine run-steps/s against batch size
# ---------------------------------------------------------------------------------------------------
def section_engine(ks: list[int], dtypes: list[str], max_log2: int, memory_gb: float, repeats: int, quick: bool
                   ) -> list[dict]:
    rows = []
    for dtype in dtypes:
        for k in ks:
            steps = 50 if quick else max(20, 200 // max(1, k // 10))
            for log2 in range(10, max_log2 + 1, 2):
                batch = 1 << log2
                if batch * train_bytes_per_run(k, k, k, dtype) > memory_gb * 2**30:
                    break
                try:
                    with jax.enable_x64(dtype == "float64"):
                        rate = bench_engine(k, dtype, steps, repeats, batch=batch)
                except Exception as e:
                    if not is_oom(e):
                        raise
                    rows.append({"k": k, "dtype": dtype, "batch": batch, "rate": None, "error": "out of memory"})
                    break
                rows.append({"k": k, "dtype": dtype, "batch": batch, "steps": steps, "rate": rate})
                print(f"  engine k={k} {dtype} batch={batch}: {rate:.3g} run-steps/s", flush=True)
    print("\n| k = d | dtype | " + " | ".join(f"2^{b}" for b in range(10, max_log2 + 1, 2)) + " | best |")
    print("|---:|---|" + "---:|" * (len(range(10, max_log2 + 1, 2)) + 1))
    for dtype in dtypes:
        for k in ks:
            got = {r["batch"]: r for r in rows if r["k"] == k and r["dtype"] == dtype}
            cells = []
            for b in range(10, max_log2 + 1, 2):
                r = got.get(1 << b)
                cells.append("—" if r is None else ("OOM" if r["rate"] is None else f"{r['rate']:.3g}"))
            best = max((r for r in got.values() if r["rate"]), key=lambda r: r["rate"], default=None)
            best_s = f"{best['rate']:.3g} (2^{best['batch'].bit_length() - 1})" if best else "—"
            print(f"| {k} | {dtype} | " + " | ".join(cells) + f" | {best_s} |")
    return rows


# ---------------------------------------------------------------------------------------------------
# 2. batched eigh
# ---------------------------------------------------------------------------------------------------
def section_eigh(ns: list[int], repeats: int, quick: bool) -> list[dict]:
    rows = []
    with jax.enable_x64(True):
        for dtype in ("float32", "float64"):
            for n in ns:
                batch = 64 if quick else max(8, min(4096, 2**24 // (n * n)))
                A = np.random.default_rng(n).normal(size=(batch, n, n))
                A = jnp.asarray(A + np.swapaxes(A, 1, 2), dtype)
                vm = jax.jit(jax.vmap(jnp.linalg.eigvalsh))
                one = jax.jit(lambda a: jax.lax.map(jnp.linalg.eigvalsh, a))
                r_vm = batch / median_time(lambda vm=vm, A=A: vm(A), repeats)
                r_one = batch / median_time(lambda one=one, A=A: one(A), repeats)
                ref = np.linalg.eigvalsh(np.asarray(A, np.float64))
                err = float(np.max(np.abs(np.asarray(vm(A), np.float64) - ref)) / np.max(np.abs(ref)))
                rows.append({"n": n, "dtype": dtype, "batch": batch, "vmapped": r_vm, "one_at_a_time": r_one,
                             "rel_err": err})
                print(f"  eigh n={n} {dtype}: {r_vm:.3g}/s vmapped, {r_one:.3g}/s one at a time", flush=True)
    print("\n| n | dtype | batch | vmapped (matrices/s) | one at a time, lax.map | ratio | max rel. error vs NumPy |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']} | {r['dtype']} | {r['batch']} | {r['vmapped']:.3g} | {r['one_at_a_time']:.3g} | "
              f"{r['vmapped'] / r['one_at_a_time']:.1f}× | {r['rel_err']:.1e} |")
    return rows


# ---------------------------------------------------------------------------------------------------
# 3. the certificate's per-run programs
# ---------------------------------------------------------------------------------------------------
def section_certificate(ks: list[int], runs: int) -> list[dict]:
    from jaxsym.certify.exact import in_blocks
    from jaxsym.sweep.closed_form import build
    from jaxsym.sweep.plan import plan_cell

    rows = []
    for k in ks:
        cfg = published_config([k], runs, "fast")
        cell = cfg.cells()[0]
        prog = build(cfg, plan_cell(cfg, cell))
        # end points of a plain float32 descent (5/k, 3000 steps): most near a minimum, as handed off
        tc = TrainConfig(steps=3000, grad_tol=0.0, dtype="float32", learning_rate=5.0 / k)
        W0 = jnp.asarray(start_points(k, runs, "float32"))
        W = np.asarray(jax.jit(jax.vmap(make_train_from(tc, jnp.eye(k, dtype=jnp.float32))))(W0).W, np.float64)
        gn = np.zeros(runs)
        div = np.zeros(runs, bool)
        for where in ("default", "cpu"):
            dev = jax.devices("cpu")[0] if where == "cpu" else jax.devices()[0]
            with jax.enable_x64(True), jax.default_device(dev):
                polish = prog.polish()
                t = {}
                for name, fn, args in (("handoff", prog.handoff, (W,)), ("polish", polish, (W, gn, div))):
                    in_blocks(fn, tuple(a[:prog.certify_block] for a in args), prog.certify_block)  # compile
                    t0 = time.perf_counter()
                    in_blocks(fn, args, prog.certify_block)
                    t[name] = runs / (time.perf_counter() - t0)
            rows.append({"k": k, "device": str(dev.platform), "runs": runs, **t})
            print(f"  certificate k={k} on {dev.platform}: hand-off {t['handoff']:.0f} runs/s, "
                  f"polish {t['polish']:.0f} runs/s", flush=True)
    print("\n| k = d | device | hand-off test (runs/s) | float64 polish (runs/s) |")
    print("|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['k']} | {r['device']} | {r['handoff']:.0f} | {r['polish']:.0f} |")
    return rows


# ---------------------------------------------------------------------------------------------------
# 4. batch invariance
# ---------------------------------------------------------------------------------------------------
def section_invariance(ks: list[int], batches: list[int], first: int = 4) -> list[dict]:
    rows = []
    for k in ks:
        cfg = TrainConfig(steps=300, grad_tol=0.0, dtype="float32", learning_rate=0.05)
        train = invariant_jit(jax.vmap(make_train_from(cfg, jnp.eye(k, dtype=jnp.float32))))
        W0 = start_points(k, max(batches), "float32")
        alone = np.stack([np.asarray(train(jnp.asarray(W0[i:i + 1])).W)[0] for i in range(first)])
        for b in batches:
            n = min(first, b)
            got = np.asarray(train(jnp.asarray(W0[:b])).W)[:n]
            same = bool(np.array_equal(got, alone[:n]))
            rows.append({"k": k, "batch": b, "bit_identical": same,
                         "max_abs_diff": float(np.max(np.abs(got - alone[:n])))})
            print(f"  invariance k={k} batch={b}: {'identical' if same else 'differs'}", flush=True)
    rows.append(sweep_invariance())
    print("\n| k = d | batch | first runs bit-identical to each trained alone | max |ΔW| |")
    print("|---:|---:|---|---:|")
    for r in rows[:-1]:
        print(f"| {r['k']} | {r['batch']} | {'yes' if r['bit_identical'] else 'no'} | {r['max_abs_diff']:.1e} |")
    s = rows[-1]
    print(f"\nsweep k = d = 8, {s['runs']} runs, chunks of {s['chunks']}: runs tables identical but for the "
          f"Hessian eigenvalues (taken from each chunk's orbit representatives): {s['identical']}; "
          f"eigenvalues within {s['hess_max_abs_diff']:.1e} (runs whose steps differ: {s['steps_differ']}, "
          f"status differs: {s['status_differ']})")
    return rows


def sweep_invariance(runs: int = 320, chunks: tuple[int, int] = (320, 32)) -> dict:
    """The default protocol's runs table of one k = d = 8 cell with two chunk sizes (hence slot counts)."""
    import dataclasses

    import pandas as pd

    from jaxsym.sweep.driver import run_sweep

    tables = []
    for c in chunks:
        cfg = dataclasses.replace(published_config([8], runs, "fast"), chunk_size=c)
        with tempfile.TemporaryDirectory() as out:
            run_sweep(cfg, out, progress=False)
            tables.append(pd.read_parquet(os.path.join(out, "runs.parquet")).sort_values("run").reset_index(drop=True))
    a, b = tables
    spectral = [c for c in a.columns if c.startswith("hess_")]
    rest_same = bool(a.drop(columns=spectral).equals(b.drop(columns=spectral)))
    spec_diff = float(np.nanmax(np.abs(a[spectral].to_numpy() - b[spectral].to_numpy())))
    return {"runs": runs, "chunks": list(chunks), "identical": rest_same, "hess_max_abs_diff": spec_diff,
            "steps_differ": int((a["steps"] != b["steps"]).sum()),
            "status_differ": int((a["status"] != b["status"]).sum())}


# ---------------------------------------------------------------------------------------------------
# 5. whole sweeps, in new processes
# ---------------------------------------------------------------------------------------------------
def sweep_in_new_process(ks: list[int], runs: int, slots: int, cache: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps({"ks": ks, "runs": runs, "slots": slots}),
                          "--cache", cache], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"sweep child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(spec: dict, cache: str) -> None:
    import dataclasses

    from jaxsym.numerics.parallel import use_compilation_cache

    use_compilation_cache(cache)
    cfg = dataclasses.replace(published_config(spec["ks"], spec["runs"], "fast"), slots=spec["slots"],
                              chunk_size=spec["runs"])
    t = time.perf_counter()
    rate, stats = sweep_rate(cfg)
    print(json.dumps({"rate": rate, "seconds": time.perf_counter() - t, "stats": stats}))


def section_sweeps(ks: list[int], runs: int, slots: list[int]) -> list[dict]:
    rows = []
    cache = tempfile.mkdtemp(prefix="jaxsym-xla-")
    for s in slots:
        cold = sweep_in_new_process(ks, runs, s, cache)
        warm = sweep_in_new_process(ks, runs, s, cache)
        eff = {k: round(100 * v["efficiency"], 1) for k, v in warm["stats"].items()}
        rows.append({"slots": s, "runs": runs, "cold": cold["rate"], "warm": warm["rate"],
                     "warm_seconds": warm["seconds"], "efficiency": eff})
        print(f"  sweep slots={s}: {cold['rate']:.0f} certified runs/s cold, {warm['rate']:.0f} warm", flush=True)
    print(f"\ncertified runs/s, k = d = {ks[0]}…{ks[-1]}, step 5/k, {runs} runs per cell, one chunk per cell:\n")
    print("| slots | cold | warm | compaction efficiency per k (%) |")
    print("|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['slots']} | {r['cold']:.0f} | {r['warm']:.0f} | {r['efficiency']} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", default="engine,eigh,certificate,invariance,sweeps")
    ap.add_argument("--ks", type=int, nargs="+", default=[10, 20, 50, 100])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    ap.add_argument("--max-log2-batch", type=int, default=18)
    ap.add_argument("--memory-gb", type=float, default=40.0)
    ap.add_argument("--eigh-ns", type=int, nargs="+", default=[36, 100, 400, 2500])
    ap.add_argument("--certificate-runs", type=int, default=1024)
    ap.add_argument("--invariance-batches", type=int, nargs="+", default=[1, 7, 64, 1024, 16384])
    ap.add_argument("--sweep-ks", type=int, nargs="+", default=[6, 7, 8, 9, 10])
    ap.add_argument("--sweep-runs", type=int, default=8192)
    ap.add_argument("--slots", type=int, nargs="+", default=[128, 1024, 8192])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes (a look on a CPU)")
    ap.add_argument("--out", default="bench_device.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(json.loads(a.child), a.cache)
        return
    if a.quick:
        a.ks, a.max_log2_batch, a.eigh_ns, a.certificate_runs = [10], 12, [36, 100], 128
        a.invariance_batches, a.sweep_ks, a.sweep_runs, a.slots, a.repeats = [1, 7, 64], [6], 256, [128], 1
    dev = jax.devices()[0]
    info = {"device": f"{dev.platform}: {getattr(dev, 'device_kind', '')}", "jax": jax.__version__,
            "cpu_count": os.cpu_count()}
    print(f"device: {info['device']}, jax {jax.__version__}, {info['cpu_count']} CPUs", flush=True)
    result: dict = {"info": info}
    sections = a.sections.split(",")
    if "engine" in sections:
        result["engine"] = section_engine(a.ks, a.dtypes, a.max_log2_batch, a.memory_gb, a.repeats, a.quick)
    if "eigh" in sections:
        result["eigh"] = section_eigh(a.eigh_ns, a.repeats, a.quick)
    if "certificate" in sections:
        result["certificate"] = section_certificate([k for k in (6, 10) if not a.quick or k == 6], a.certificate_runs)
    if "invariance" in sections:
        result["invariance"] = section_invariance([8, 20], a.invariance_batches)
    if "sweeps" in sections:
        result["sweeps"] = section_sweeps(a.sweep_ks, a.sweep_runs, a.slots)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
