#!/usr/bin/env python3
"""What a sweep pays besides descent: compilation per program, loading stored programs in a new process, the parts
of the hand-off test per orbit, and the Hessians' block size. Prints tables (docs/benchmarks.md, "a fourth session").

    python scripts/startup_costs.py compile --k 10          # lower() and compile() of one cell's programs
    python scripts/startup_costs.py new-process              # the published cells warm in a new process
    python scripts/startup_costs.py cold-programs            # the published cells cold: compilation per program
    python scripts/startup_costs.py ladder 4:2 8:16 8:128    # slot ladders (SHRINK:TAIL_SLOTS), cold and warm
    python scripts/startup_costs.py layout --k 6 10 16 20    # the step vmapped over the leading or the last axis
    python scripts/startup_costs.py handoff --k 10           # the test per orbit's parts, one cell, one worker
    python scripts/startup_costs.py blocks --k 6 10 20       # Hessians and distances per block size
    python scripts/startup_costs.py atlas-programs           # a small atlas cold: compilation per program
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym import config


def _timed(name: str, fn: Callable[..., Any], *args: Any, options: dict[str, Any] | None = None) -> None:
    from jaxsym.numerics.parallel import full_float32

    t0 = time.perf_counter()
    lowered = jax.jit(full_float32(fn), compiler_options=options).lower(*args)
    t1 = time.perf_counter()
    lowered.compile()
    print(f"| {name} | {t1 - t0:.2f} | {time.perf_counter() - t1:.2f} |", flush=True)


def compile_costs(k: int, runs: int = 256) -> None:
    """Lowering and compilation of one k = d cell's programs, one at a time (the process's first compilation
    excluded): the compacting engine's pieces and the float64 point programs."""
    from jaxsym.engine.descent import cell_inputs, make_run_loop, starts
    from jaxsym.landscape.activations import RELU
    from jaxsym.numerics.parallel import batch_invariant_options

    cfg = config.TrainConfig(learning_rate=5 / k)
    V = np.eye(k, dtype=np.float32)
    base, _ = cell_inputs(cfg, 0, k, k)
    loop = make_run_loop(cfg, V, jnp.float32(5 / k))
    ids = np.arange(runs, dtype=np.uint32)
    opts = batch_invariant_options()
    jax.jit(lambda x: x + 1).lower(1.0).compile()  # the first compilation of a process pays set-up
    s0 = jax.jit(lambda r: jax.vmap(loop.init)(starts(r, base, k, k, cfg)))(ids)
    print(f"k = d = {k}, {runs} runs: seconds")
    print("| program | lower | compile |\n|---|---:|---:|")
    _timed("starts (threefry, normal)", lambda r: starts(r, base, k, k, cfg), ids, options=opts)
    _timed("init (starts, first gradients)", lambda r: jax.vmap(loop.init)(starts(r, base, k, k, cfg)), ids,
           options=opts)
    _timed("one step", lambda s: jax.vmap(loop.step)(s), s0, options=opts)
    _timed("16 steps (fori_loop)", lambda s: jax.lax.fori_loop(0, 16, lambda i, s: jax.vmap(loop.step)(s), s), s0,
           options=opts)
    _engine_compiles(cfg, V, k, ids)
    W = np.random.default_rng(0).normal(size=(k, k))
    with jax.enable_x64(True):
        for name in ("grad", "loss", "hessian"):
            _timed(f"float64 {name}", getattr(RELU, name), W, np.eye(k))
        _timed("float64 hessians (8, lax.map)", lambda Ws, V: jax.lax.map(lambda w: RELU.hessian(w, V), Ws),
               np.stack([W] * 8), np.eye(k))


def _engine_compiles(cfg: config.TrainConfig, V: np.ndarray, k: int, ids: np.ndarray) -> None:
    """The compacting engine's own programs (128 slots), as a sweep compiles them: XLA's compile time of each."""
    from jax._src import monitoring

    from jaxsym.engine.compact import make_compact_engine

    got: list[float] = []
    monitoring.register_event_duration_secs_listener(
        lambda event, secs, **_: got.append(secs) if event == "/jax/core/compile/backend_compile_duration" else None)
    ops = make_compact_engine(cfg, V, k, 0, slots=128)
    got.clear()
    state = jax.block_until_ready(ops.engine.init(ids))
    print(f"| compact-init | | {sum(got):.2f} |", flush=True)
    got.clear()
    jax.block_until_ready(ops.engine.advance(state, np.int32(16)))
    print(f"| compact-advance (128 slots) | | {sum(got):.2f} |", flush=True)


def new_process(cache: str | None) -> None:
    """The published cells (k = d = 6…10, 1,000 runs) in a new process whose stored programs and compilation cache
    were filled by a first one; sums JAX's compilation and cache events over the sweep."""
    if cache is None:
        cache = tempfile.mkdtemp(prefix="jaxsym-startup-")
        for label in ("first process (fills the caches)", "new process"):
            out = subprocess.run([sys.executable, __file__, "new-process", "--cache", cache], check=True,
                                 capture_output=True, text=True).stdout
            print(f"{label}:\n{out}")
        shutil.rmtree(cache)
        return
    from bench import published_config  # the published cells as scripts/bench.py sweeps them
    from jax._src import monitoring

    from jaxsym.numerics.parallel import use_compilation_cache
    from jaxsym.sweep.driver import run_sweep

    sums: dict[str, float] = collections.defaultdict(float)
    counts: collections.Counter[str] = collections.Counter()

    def listen(event: str, secs: float, **_: Any) -> None:
        sums[event] += secs
        counts[event] += 1

    monitoring.register_event_duration_secs_listener(listen)
    use_compilation_cache(cache)
    cfg = published_config([6, 7, 8, 9, 10], 1000, "fast")
    for sweep in ("sweep", "the same sweep again in this process"):
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            run_sweep(cfg, out, progress=False)
            print(f"{sweep}: wall {time.perf_counter() - t:.2f} s")
        if sweep == "sweep":
            print("| event (summed over workers) | calls | seconds |\n|---|---:|---:|")
            for event, secs in sorted(sums.items(), key=lambda x: -x[1]):
                if event.startswith(("/jax/core/compile", "/jax/compilation_cache/cache_retrieval")):
                    print(f"| {event} | {counts[event]} | {secs:.2f} |")


def cold_programs() -> None:
    """The published cells (k = d = 6…10, 1,000 runs) swept once from empty caches: XLA's compilations per stored
    program name (summed over the two workers), and how many distinct programs of that name and argument signatures
    (shapes and dtypes) were called — more compilations than signatures is a program compiled twice."""
    import threading

    from bench import published_config
    from jax._src import monitoring

    from jaxsym.numerics import programs
    from jaxsym.numerics.parallel import use_compilation_cache
    from jaxsym.sweep.driver import run_sweep

    here = threading.local()
    compiled: collections.Counter[str] = collections.Counter()
    secs: dict[str, float] = collections.defaultdict(float)
    sigs: dict[str, set[Any]] = collections.defaultdict(set)
    call = programs.Program.__call__

    def named(self: programs.Program[Any], *args: Any) -> Any:
        sigs[self.name].add((self.key, tuple((x.shape, str(x.dtype)) for x in jax.tree.leaves(args))))
        outer, here.name = getattr(here, "name", None), self.name
        try:
            return call(self, *args)
        finally:
            here.name = outer

    def listen(event: str, seconds: float, **_: Any) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            name = getattr(here, "name", None) or "(other)"
            compiled[name] += 1
            secs[name] += seconds

    programs.Program.__call__ = named  # type: ignore[method-assign]
    monitoring.register_event_duration_secs_listener(listen)
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        use_compilation_cache(cache)
        t = time.perf_counter()
        run_sweep(published_config([6, 7, 8, 9, 10], 1000, "fast"), out, progress=False)
        wall = time.perf_counter() - t
    print(f"cold sweep: wall {wall:.2f} s; {sum(compiled.values())} compilations, {sum(secs.values()):.2f} s")
    print("| program | compilations | signatures | seconds |\n|---|---:|---:|---:|")
    for name in sorted(secs, key=lambda n: -secs[n]):
        print(f"| {name} | {compiled[name]} | {len(sigs[name]) if name in sigs else ''} | {secs[name]:.2f} |")


def ladder(settings: list[str], one: str | None) -> None:
    """The published cells with other slot ladders (``SHRINK:TAIL_SLOTS``; ``4:2`` is 128, 32, 8, 2 slots, ``8:16``
    128 and 16, ``8:128`` no ladder): each in a new process from empty caches (wall, compilations), then the same
    sweep twice more in that process (warm)."""
    if one is None:
        print("| SHRINK:TAIL_SLOTS | cold wall s | compilations | compiling s | warm wall s (twice) |")
        print("|---|---:|---:|---:|---|")
        for setting in settings:
            out = subprocess.run([sys.executable, __file__, "ladder", "--one", setting], check=True,
                                 capture_output=True, text=True).stdout
            print(out.strip().splitlines()[-1], flush=True)
        return
    from bench import published_config
    from jax._src import monitoring

    from jaxsym.engine import compact
    from jaxsym.numerics.parallel import use_compilation_cache
    from jaxsym.sweep.driver import run_sweep

    compact.SHRINK, compact.TAIL_SLOTS = map(int, one.split(":"))
    compiled: list[float] = []
    monitoring.register_event_duration_secs_listener(
        lambda event, secs, **_: compiled.append(secs) if event == "/jax/core/compile/backend_compile_duration"
        else None)
    cfg = published_config([6, 7, 8, 9, 10], 1000, "fast")
    walls = []
    with tempfile.TemporaryDirectory() as cache:
        use_compilation_cache(cache)
        for i in range(3):
            n, secs = len(compiled), sum(compiled)
            with tempfile.TemporaryDirectory() as out:
                t = time.perf_counter()
                run_sweep(cfg, out, progress=False)
                walls.append(time.perf_counter() - t)
            if i == 0:
                first = (len(compiled) - n, sum(compiled) - secs)
    print(f"| {one} | {walls[0]:.2f} | {first[0]} | {first[1]:.1f} | {walls[1]:.2f}, {walls[2]:.2f} |")


def layout(ks: list[int], slots: int = 128, steps: int = 200) -> None:
    """Plain gradient descent with the training gradient, ``slots`` runs vmapped over the leading axis (as the
    engine does) or over the last (runs the minor axis, so that elementwise work is vectorised across runs):
    run-steps/s (best of 5) and whether the end points have the same bits."""
    from jaxsym.landscape.model import make_train_grad
    from jaxsym.numerics.parallel import invariant_jit

    print("| k = d | leading axis, run-steps/s | last axis | last / leading | same bits |\n|---:|---:|---:|---:|---|")
    for k in ks:
        grad = make_train_grad(jnp.eye(k, dtype=jnp.float32))
        W0 = (np.random.default_rng(0).normal(size=(slots, k, k)) / np.sqrt(k)).astype(np.float32)
        got = {}
        for axis in (0, -1):
            step = jax.vmap(lambda W, k=k, grad=grad: W - (5.0 / k) * grad(W), in_axes=axis, out_axes=axis)
            run = invariant_jit(lambda W, step=step: jax.lax.fori_loop(0, steps, lambda i, W: step(W), W))
            X = W0 if axis == 0 else np.ascontiguousarray(np.moveaxis(W0, 0, -1))
            out = jax.block_until_ready(run(X))
            best = np.inf
            for _ in range(5):
                t = time.perf_counter()
                out = jax.block_until_ready(run(X))
                best = min(best, time.perf_counter() - t)
            got[axis] = (slots * steps / best, np.moveaxis(np.asarray(out), axis, 0))
        (r0, a), (r1, b) = got[0], got[-1]
        print(f"| {k} | {r0:.3g} | {r1:.3g} | {r1 / r0:.2f} | {np.array_equal(a, b)} |", flush=True)


def handoff_parts(k: int, runs: int) -> None:
    """One k = d cell, one worker, swept twice in this process (the second warm): seconds in the hand-off's offers
    and, inside them, in matching, Hessian distances and the per-run path's Hessians."""
    from jaxsym.certify import basins
    from jaxsym.sweep import closed_form
    from jaxsym.sweep.driver import run_sweep

    secs: dict[str, float] = collections.defaultdict(float)

    def timer(owner: Any, name: str, label: str) -> None:
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                secs[label] += time.perf_counter() - t

        setattr(owner, name, timed)

    timer(basins.Basins, "offer", "offers (the whole test)")
    timer(basins.Basins, "_match", "test per orbit")
    timer(basins, "match_many" if hasattr(basins, "match_many") else "match", "  matching")  # "match" before 358b438
    timer(closed_form, "hessian_distances", "  Hessian distances")
    timer(closed_form, "hessians", "Hessians (per-run path)")
    cfg = config.from_dict({"name": "parts", "seed": 0, "runs": runs, "grid": {"d": [k], "k": "d"}, "workers": 1,
                            "train": {"learning_rate": "5/k", "steps": 20000}})
    for _ in range(2):
        secs.clear()
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            run_sweep(cfg, out, progress=False)
            wall = time.perf_counter() - t
    print(f"k = d = {k}, {runs} runs, one worker, warm: sweep {wall:.2f} s")
    print("| part | seconds |\n|---|---:|")
    for label, v in secs.items():
        print(f"| {label} | {v:.3f} |")


def blocks(ks: list[int]) -> None:
    """Hessian distances per point (many points) and calls of 3 Hessians (the per-run path's), per block size."""
    from jaxsym.certify import exact

    rng = np.random.default_rng(0)
    print("| k = d | block | distances, ms a point | 14 calls of 3 Hessians, s |\n|---:|---:|---:|---:|")
    for k in ks:
        n = 1000 if k < 20 else 200
        Ws, V = rng.normal(size=(n, k, k)), np.eye(k)
        H_ref = exact.hessians(Ws[:1], V)[0]
        for block in (32, 8, 4):
            exact._hessian_block = lambda W, b=block: b  # type: ignore[assignment]
            exact.hessian_distances(Ws[:block], H_ref, V)
            exact.hessians(Ws[:block], V)
            t = time.perf_counter()
            exact.hessian_distances(Ws, H_ref, V)
            per = (time.perf_counter() - t) / n
            t = time.perf_counter()
            for i in range(0, 40, 3):
                exact.hessians(Ws[i:i + 3], V)
            print(f"| {k} | {block} | {1e3 * per:.3f} | {time.perf_counter() - t:.3f} |", flush=True)


def atlas_programs(k: int, k_to: int, max_blocks: int) -> None:
    """An atlas scan (``jaxsym.fixedpoints.atlas.scan``, k to k_to, 4 starts) from empty caches, in this process:
    XLA's compilations per jitted function (the restricted problems' Newton solves, vmapped or not, and the
    Hessians of the block spectra are one program per layout: number of blocks, extra neurons or none)."""
    from jax._src import monitoring

    from jaxsym.fixedpoints.atlas import scan
    from jaxsym.numerics.parallel import use_compilation_cache

    compiled: collections.Counter[str] = collections.Counter()
    secs: dict[str, float] = collections.defaultdict(float)

    def listen(event: str, seconds: float, **kw: Any) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            name = str(kw.get("fun_name", "(other)"))
            name = name if seconds > 0.5 else "(programs under 0.5 s)"
            compiled[name] += 1
            secs[name] += seconds

    monitoring.register_event_duration_secs_listener(listen)
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        use_compilation_cache(cache)
        t = time.perf_counter()
        scan(k, k_to, Path(out), starts=4, max_blocks=max_blocks)
        wall = time.perf_counter() - t
    print(f"atlas scan k = {k}…{k_to}, at most {max_blocks} blocks, cold: wall {wall:.2f} s; "
          f"{sum(compiled.values())} compilations, {sum(secs.values()):.2f} s")
    print("| program | compilations | seconds |\n|---|---:|---:|")
    for name in sorted(secs, key=lambda n: -secs[n]):
        print(f"| {name} | {compiled[name]} | {secs[name]:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    sub.add_parser("compile").add_argument("--k", type=int, default=10)
    sub.add_parser("new-process").add_argument("--cache", default=None)
    sub.add_parser("cold-programs")
    lad = sub.add_parser("ladder")
    lad.add_argument("settings", nargs="*", default=["4:2", "8:16", "16:16", "8:128"])
    lad.add_argument("--one", default=None, help=argparse.SUPPRESS)
    sub.add_parser("layout").add_argument("--k", type=int, nargs="+", default=[6, 10, 16, 20])
    h = sub.add_parser("handoff")
    h.add_argument("--k", type=int, default=10)
    h.add_argument("--runs", type=int, default=1000)
    sub.add_parser("blocks").add_argument("--k", type=int, nargs="+", default=[6, 10, 20])
    at = sub.add_parser("atlas-programs")
    at.add_argument("--k", type=int, default=4)
    at.add_argument("--k-to", type=int, default=6)
    at.add_argument("--max-blocks", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("JAXSYM_COMPILATION_CACHE", "off")
    if args.what == "compile":
        compile_costs(args.k)
    elif args.what == "new-process":
        new_process(args.cache)
    elif args.what == "cold-programs":
        cold_programs()
    elif args.what == "ladder":
        ladder(args.settings, args.one)
    elif args.what == "layout":
        layout(args.k)
    elif args.what == "handoff":
        handoff_parts(args.k, args.runs)
    elif args.what == "atlas-programs":
        atlas_programs(args.k, args.k_to, args.max_blocks)
    else:
        blocks(args.k)


if __name__ == "__main__":
    main()
