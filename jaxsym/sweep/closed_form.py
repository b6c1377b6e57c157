"""The closed-form cell pipeline: train → float64 polish → certificate → orbits → isotropy and spectrum.

Cells whose population loss has a closed form (:mod:`jaxsym.landscape.model`, :mod:`jaxsym.landscape.activations`):
every run is
trained by an :class:`~jaxsym.engine.interface.Engine`, polished in float64 to a critical point and certified with the
exact Hessian (:mod:`jaxsym.certify.exact`); certified points are clustered into orbits per chunk
(:func:`jaxsym.symmetry.orbits.cluster`), and only the chunks' representatives travel to the merge, which clusters them
again per cell and describes each distinct point by its isotropy group and Hessian spectrum.

Two engines feed it: full-batch gradient descent on the closed form (:func:`jaxsym.engine.descent.make_batch_engine`),
and SGD on samples of a law whose population loss *is* the Gaussian closed form
(:func:`jaxsym.engine.sgd.has_closed_form`: ReLU, fixed output weights, one hidden layer, online sampling of a
rotation-invariant law). SGD's averaged end points sit ~1e-3 from a critical point (sampling noise), so those
cells polish from up to ``10·sampled.grad_tol``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsym.certify.basins import Basins
from jaxsym.certify.exact import (
    DIVERGED,
    NOT_CONVERGED,
    STATUSES,
    classify,
    gradient,
    hessian_distances,
    hessians,
    in_blocks,
    loss_value,
    make_polish,
    per_run,
)
from jaxsym.config import Cell, CertifyConfig, SweepConfig
from jaxsym.engine import sgd as sampled
from jaxsym.engine.compact import CompactOps, descend, make_compact_engine
from jaxsym.engine.descent import RunResult, make_batch_engine
from jaxsym.engine.interface import Engine, padded, train_chunk
from jaxsym.io import columns as col
from jaxsym.io import results
from jaxsym.io.columns import REP_COLUMNS, empty_reps, minimum_row, run_rows
from jaxsym.landscape.activations import Objective
from jaxsym.numerics.parallel import invariant_jit
from jaxsym.sweep.pipeline import CellMerge, CellPipeline, Chunk
from jaxsym.sweep.plan import CellPlan
from jaxsym.symmetry.groups import TwoLayer
from jaxsym.symmetry.orbits import cluster
from jaxsym.symmetry.spectra import group_eigenvalues, hessian_eigenvalues

FROM_ORBIT = (col.LOSS, col.GRAD_NORM, col.HESS_MIN, col.HESS_MAX)  # a certified run's values are its orbit's
DEFAULT_SLOTS = 128  # slots of the compacting engine (run-steps/s saturates near this many on a CPU)


@dataclass
class Programs:
    """Compiled programs of one cell (built once, reused for every chunk)."""

    cell: Cell
    V: np.ndarray
    obj: Objective
    group: TwoLayer                         # the cell's symmetry group (cell_group)
    engine: Engine[Any, RunResult] | None   # the full protocol (or sampled SGD): every run to its stop
    compact: CompactOps | None              # the fast protocol: compacting slots and hand-off
    polish: Any                             # () -> per-run float64 polish (Polished), built when first needed
    handoff: Any                            # () -> a chunk's Basins (the hand-off test), or None
    size: int
    polish_from: float  # runs whose training ‖∇F‖ is above this are not polished (not_converged)
    certify_block: int  # runs per call of the per-run float64 programs


def cell_group(V: np.ndarray) -> TwoLayer:
    """The symmetry group of a closed-form cell (:mod:`jaxsym.symmetry.groups`): ``G_V ⊂ S_k × S_d``."""
    return TwoLayer(V)


def with_closed_form_finish(engine: Engine[Any, sampled.SampledResult], V: np.ndarray, obj: Objective
                            ) -> Engine[Any, RunResult]:
    """The sampled engine with a :class:`~jaxsym.engine.descent.RunResult` finish (first layer, the objective's
    closed-form loss and gradient), so that its end points are certified like any closed-form run."""
    Vj = jnp.asarray(V, jnp.float32)

    def finish(state: Any) -> RunResult:
        res = engine.finish(state)
        W = res.params.layers[0]
        loss = jax.vmap(lambda w: obj.loss(w, Vj))(W)
        gn = jax.vmap(lambda w: jnp.linalg.norm(obj.grad(w, Vj)))(W)
        return RunResult(W, loss, gn, res.steps, res.diverged | ~jnp.isfinite(loss))

    return Engine(engine.init, engine.advance, invariant_jit(finish),
                  engine.n_running)


def build(cfg: SweepConfig, plan: CellPlan) -> Programs:
    """The cell's programs, as its plan says: the engine (compacting, batch or sampled SGD), the float64 polish
    and, where the plan uses it, the hand-off test per orbit."""
    cell, V, obj = plan.cell, plan.V, plan.objective
    certify_cfg = cfg.certify
    engine, ops = None, None
    if plan.engine == "sampled_sgd":
        assert cfg.sampled is not None
        p = sampled.make_problem(cfg.sampled, cell.d, cell.k, cell.teacher_width, cell.train.activation, cfg.seed)
        engine = with_closed_form_finish(sampled.make_engine(p, cell.train, cfg.sampled, cfg.seed), V, obj)
        certify_cfg = dataclasses.replace(cfg.certify,
                                          polish_from=max(cfg.certify.polish_from, 10 * cfg.sampled.grad_tol))
    elif plan.engine == "compact":
        ops = make_compact_engine(cell.train, V, cell.k, cfg.seed, slots=min(cfg.slots or DEFAULT_SLOTS, plan.padded))
    else:
        engine = make_batch_engine(cell.train, V, cell.k, cfg.seed)

    @functools.cache
    def polish_prog() -> Any:
        with jax.enable_x64(True):
            return per_run(make_polish(certify_cfg, V, obj), name="polish", key=(certify_cfg, V, obj.key))

    block = plan.certify_block
    handoff = (_basins(certify_cfg, V, float(cell.train.learning_rate), obj, polish_prog, block)
               if plan.uses_handoff else None)
    return Programs(cell, V, obj, cell_group(V), engine, ops, polish_prog, handoff, plan.padded,
                    certify_cfg.polish_from, block)


def _basins(certify_cfg: CertifyConfig, V: np.ndarray, lr: float, obj: Objective, polish: Callable[[], Any],
            block: int) -> Callable[[], Basins]:
    """A factory of a chunk's :class:`~jaxsym.certify.basins.Basins` (the hand-off test per orbit, float64): its
    per-run path is the cell's polish program, its Hessians the spectra's program."""
    colours = cell_group(V).column_colours(V.shape[1])

    def polish_all(W: np.ndarray) -> Any:  # every offered run is polished (none is above polish_from)
        with jax.enable_x64(True):
            return in_blocks(polish(), (W, np.zeros(len(W)), np.zeros(len(W), bool)), block)

    def make() -> Basins:
        return Basins(certify_cfg, lr, colours, polish_all, lambda Ws: hessians(Ws, V, obj),
                      lambda Xs, H_ref: hessian_distances(Xs, H_ref, V, obj),
                      lambda W: gradient(W, V, obj), lambda W: loss_value(W, V, obj))

    return make


def _descend(cfg: SweepConfig, prog: Programs, runs: np.ndarray, inflight: Path | None
             ) -> tuple[RunResult, np.ndarray, dict[int, Any], dict[str, Any]]:
    """The fast protocol: compacting descent with the hand-off (:mod:`jaxsym.certify.basins`); returns results,
    hand-off mask, the certified points of handed-off runs by queue position, and the descent's statistics."""
    assert prog.compact is not None
    cache: dict[int, tuple[np.ndarray, float, float, float]] = {}  # position -> (W, loss, grad_norm, shift)
    basins = prog.handoff() if prog.handoff is not None else None

    clock = {"handoff_s": 0.0}

    def handoff(positions: np.ndarray, W: np.ndarray, g: np.ndarray | None) -> np.ndarray:
        if basins is None:
            return np.zeros(len(positions), bool)
        t0 = time.perf_counter()
        out = basins.offer(runs[np.minimum(positions, len(runs) - 1)], W, g)
        clock["handoff_s"] += time.perf_counter() - t0
        for i, pos in enumerate(positions):
            if out.accepted[i]:
                cache[int(pos)] = (out.W[i], float(out.loss[i]), float(out.grad_norm[i]), float(out.shift[i]))
        return out.accepted

    res, handed, stats = descend(prog.compact, padded(runs, prog.size), prog.cell.train, handoff, inflight=inflight,
                                 checkpoint_interval_s=cfg.checkpoint_interval_s, label=prog.cell.label)
    missing = [int(p) for p in np.flatnonzero(handed[:len(runs)]) if int(p) not in cache]
    if missing:  # handed off before a resume: the same test again (a refusal is polished with the rest)
        handoff(np.array(missing), np.asarray(res.W)[missing], None)
    info = {"needed_steps": stats.needed, "executed_slot_steps": stats.executed, "efficiency": stats.efficiency,
            "phases": stats.phases, "handed_off": stats.handed, **clock}
    if basins is not None:
        info.update(per_orbit=basins.matched, solved=basins.solved, representatives=len(basins.reps),
                    handoff_s=clock["handoff_s"] - basins.solve_s, per_run_s=basins.solve_s)
    return res, handed, cache, info


def run_chunk(cfg: SweepConfig, prog: Programs, start: int, stop: int, inflight: Path | None = None) -> Chunk:
    """Train, polish, certify and cluster runs ``start … stop−1`` of a cell.

    Every run is polished in float64 (or was, by its hand-off); certified critical points are clustered into
    chunk-local orbits, and each orbit's representative gets the Hessian eigenvalues that classify all its runs
    (:func:`jaxsym.certify.exact.classify`). Returns the chunk's runs rows (``orbit`` is the chunk-local orbit) and
    its distinct points.
    """
    cell = prog.cell
    n = stop - start
    runs = np.arange(start, stop, dtype=np.int64)
    info: dict[str, Any] = {}
    t0 = time.perf_counter()
    if prog.compact is not None:
        res, handed, cache, info = _descend(cfg, prog, runs, inflight)
    else:
        assert prog.engine is not None
        res = train_chunk(prog.engine, padded(runs, prog.size), steps=cell.train.steps,
                          segment_steps=cfg.segment_steps, inflight=inflight,
                          checkpoint_interval_s=cfg.checkpoint_interval_s, label=cell.label)
        handed, cache = np.zeros(len(res.W), bool), {}
    res = jax.tree.map(lambda x: x[:n], res)
    handed = handed[:n]
    t1 = time.perf_counter()
    info["descent_s"] = t1 - t0 - info.get("handoff_s", 0.0) - info.get("per_run_s", 0.0)  # compile on first chunk

    diverged = np.asarray(res.diverged)
    W = np.array(res.W, np.float64)  # copies: the polish writes into them
    loss = np.array(res.loss, np.float64)
    gnorm = np.array(res.grad_norm, np.float64)
    iters = np.zeros(n, np.int32)
    shift = np.zeros(n)
    certified = np.zeros(n, bool)  # by the hand-off: the float64 point is known
    for pos, (Wc, lc, gc, sc) in cache.items():
        if pos < n:
            W[pos], loss[pos], gnorm[pos], shift[pos] = Wc, lc, gc, sc
            certified[pos] = True
    eligible = (~diverged & (np.asarray(res.grad_norm) <= prog.polish_from)) | certified
    todo = np.flatnonzero(eligible & ~certified)
    if len(todo):
        with jax.enable_x64(True):
            pol = in_blocks(prog.polish(), (W[todo], gnorm[todo], diverged[todo]), prog.certify_block)
        W[todo], loss[todo], gnorm[todo], iters[todo], shift[todo] = pol.W, pol.loss, pol.grad_norm, \
            pol.polish_iters, pol.shift
        eligible[todo] = pol.eligible

    t2 = time.perf_counter()
    info["polish_s"] = t2 - t1
    tol = cfg.certify
    crit = np.flatnonzero(eligible & np.isfinite(loss) & np.isfinite(gnorm)
                          & ((gnorm <= tol.grad_tol) | (loss <= tol.loss_tol)))
    hmin = np.full(n, np.nan)
    hmax = np.full(n, np.nan)
    orbit = np.full(n, -1, dtype=np.int64)
    if len(crit):  # one Hessian eigendecomposition per distinct point
        cl = cluster(W[crit], prog.group, tol=tol.cluster_tol, order=runs[crit])
        spectra = [hessian_eigenvalues(W[crit[r]], prog.V, prog.obj) for r in cl.reps]
        ext = np.array([(e[0], e[-1]) for e in spectra])
        hmin[crit], hmax[crit] = ext[cl.labels, 0], ext[cl.labels, 1]
        orbit[crit] = cl.labels
    info["cluster_s"] = time.perf_counter() - t2  # orbits and one spectrum per distinct point
    status = classify(loss, gnorm, hmin, diverged, tol, xp=np)
    status = np.where(eligible | (status == DIVERGED), status, np.where(diverged, DIVERGED, NOT_CONVERGED))
    names = np.array(STATUSES)[status]
    rows = run_rows(cfg, cell, runs, {
        col.LOSS: loss, col.GRAD_NORM: gnorm, col.STEPS: np.asarray(res.steps, np.int64), col.STATUS: names,
        col.ORBIT: orbit, col.TRAIN_LOSS: np.asarray(res.loss, np.float64),
        col.TRAIN_GRAD_NORM: np.asarray(res.grad_norm, np.float64), col.POLISH_ITERS: iters,
        col.POLISH_SHIFT: shift, col.HESS_MIN: hmin, col.HESS_MAX: hmax, col.HANDOFF: certified})
    if cfg.save_weights:
        rows[col.W] = list(W.reshape(n, -1))
    reps = empty_reps()
    if len(crit):
        at = crit[cl.reps]
        reps = pd.DataFrame({col.LOCAL_ORBIT: np.arange(len(cl.reps)), col.RUN: runs[at], col.COUNT: cl.counts,
                             col.W: list(W[at].reshape(len(at), -1)),
                             **{c: rows[c].to_numpy()[at] for c in REP_COLUMNS},
                             col.EIGS: spectra})  # the merge describes an orbit by its first run's: no second eigh
    return Chunk(rows, reps, info)


def describe_point(W: np.ndarray, V: np.ndarray, tol: float, obj: Objective, eig_tol: float = 1e-6,
                   eigs: np.ndarray | None = None) -> dict[str, Any]:
    """Isotropy and spectrum columns of a distinct critical point; ``eigs``: its Hessian eigenvalues where a
    chunk computed them already (one spectrum per distinct point), else computed here."""
    iso = cell_group(V).isotropy(W, tol)
    spec = group_eigenvalues(hessian_eigenvalues(W, V, obj) if eigs is None else eigs, eig_tol)
    return {col.ISOTROPY: iso.name, col.ISOTROPY_ORDER: iso.order, col.NEURON_ORBITS: iso.neuron_orbits,
            col.COORDINATE_ORBITS: iso.coordinate_orbits, col.N_DISTINCT_EIGS: len(spec),
            col.EIG_VALUES: [v for v, _ in spec], col.EIG_MULTS: [m for _, m in spec]}


def merge(cfg: SweepConfig, plan: CellPlan, files: list[tuple[Path, Path]]) -> CellMerge:
    """Distinct critical points of a cell from its chunks' representatives, and the map
    ``(chunk position, local orbit) → orbit id``. Orbit ids are ordered by (status, loss, first run)."""
    reps = results.read_chunks([reps_path for _, reps_path in files])
    if reps is None:
        return CellMerge([], {})
    cell, V, obj = plan.cell, plan.V, plan.objective
    Ws = np.stack(reps[col.W].to_numpy()).reshape(-1, cell.k, cell.d)
    cl = cluster(Ws, cell_group(V), tol=cfg.certify.cluster_tol, order=reps[col.RUN].to_numpy(),
                 weights=reps[col.COUNT].to_numpy())
    rank = {s: i for i, s in enumerate(STATUSES)}
    firsts = reps.iloc[cl.reps]
    order = sorted(range(len(cl.reps)), key=lambda j: (rank[firsts[col.STATUS].iloc[j]], firsts[col.LOSS].iloc[j],
                                                       firsts[col.RUN].iloc[j]))
    new_id = {old: new for new, old in enumerate(order)}
    minima = []
    for old in order:
        r = firsts.iloc[old]
        W = Ws[cl.reps[old]]
        head = {col.ORBIT: new_id[old], col.STATUS: r[col.STATUS], col.LOSS: float(r[col.LOSS]),
                col.COUNT: int(cl.counts[old]),
                col.GRAD_NORM: float(r[col.GRAD_NORM]), col.HESS_MIN: float(r[col.HESS_MIN]),
                col.HESS_MAX: float(r[col.HESS_MAX])}
        eigs = r[col.EIGS] if col.EIGS in reps else None  # absent in chunks written before it was kept
        eigs = np.asarray(eigs, np.float64) if isinstance(eigs, (list, np.ndarray)) and len(eigs) else None
        minima.append(minimum_row(cell, head, describe_point(W, V, cfg.certify.cluster_tol, obj, eigs=eigs),
                                  W.reshape(-1).tolist(), int(r[col.RUN])))
    mapping = {(int(c), int(o)): new_id[int(lab)]
               for c, o, lab in zip(reps[col.CHUNK], reps[col.LOCAL_ORBIT], cl.labels)}
    return CellMerge(minima, mapping, from_orbit=FROM_ORBIT)


PIPELINE: CellPipeline[Programs] = CellPipeline("closed_form", build, run_chunk, merge)
