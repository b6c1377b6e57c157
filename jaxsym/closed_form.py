"""The closed-form cell pipeline: train → float64 polish → certificate → orbits → isotropy and spectrum.

Cells whose population loss has a closed form (:mod:`jaxsym.model`, :mod:`jaxsym.activations`): every run is
trained by an :class:`~jaxsym.engine.Engine`, polished in float64 to a critical point and certified with the
exact Hessian (:mod:`jaxsym.certify`); certified points are clustered into orbits per chunk
(:func:`jaxsym.orbits.cluster`), and only the chunks' representatives travel to the merge, which clusters them
again per cell and describes each distinct point by its isotropy group and Hessian spectrum.

Two engines feed it: full-batch gradient descent on the closed form (:func:`jaxsym.train.make_batch_engine`),
and SGD on samples of a law whose population loss *is* the Gaussian closed form
(:func:`jaxsym.sampled.has_closed_form`: ReLU, fixed output weights, one hidden layer, online sampling of a
rotation-invariant law). SGD's averaged end points sit ~1e-3 from a critical point (sampling noise), so those
cells polish from up to ``10·sampled.grad_tol``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsym import results, sampled
from jaxsym.activations import Objective, objective
from jaxsym.certify import DIVERGED, NOT_CONVERGED, STATUSES, Certificate, make_certify_batch
from jaxsym.columns import CRITICAL, REP_COLUMNS, empty_reps, minimum_row, run_rows
from jaxsym.config import Cell, SweepConfig
from jaxsym.engine import Engine, bucket, padded, train_chunk
from jaxsym.model import grad as relu_grad
from jaxsym.model import loss as relu_loss
from jaxsym.model import make_target
from jaxsym.orbits import cluster
from jaxsym.parallel import shard_runs
from jaxsym.pipeline import CellMerge, CellPipeline, Chunk
from jaxsym.plan import batch_sizes
from jaxsym.spectra import group_eigenvalues, hessian_eigenvalues
from jaxsym.symmetry import isotropy
from jaxsym.train import RunResult, make_batch_engine


@dataclass
class Programs:
    """Compiled programs of one cell (built once, reused for every chunk)."""

    cell: Cell
    V: np.ndarray
    engine: Engine[Any, RunResult]
    certify: Any  # jitted (W, train_grad_norm, diverged) -> Certificate, batched
    size: int
    certify_size: int
    polish_from: float  # runs whose training ‖∇F‖ is above this are not polished (not_converged)


def cell_problem(cfg: SweepConfig, cell: Cell) -> tuple[np.ndarray, Objective]:
    """The cell's target ``V`` (m, d) and its :class:`~jaxsym.activations.Objective`."""
    V = make_target(cell.target, cell.d, cell.teacher_width, cfg.seed)
    return V, objective(cell.train.activation, cell.train.input_corr)


def with_closed_form_finish(engine: Engine[Any, sampled.SampledResult], V: np.ndarray
                            ) -> Engine[Any, RunResult]:
    """The sampled engine with a :class:`~jaxsym.train.RunResult` finish (first layer, closed-form loss and
    gradient), so that its end points are certified like any closed-form run."""
    Vj = jnp.asarray(V, jnp.float32)

    def finish(state: Any) -> RunResult:
        res = engine.finish(state)
        W = res.params.layers[0]
        loss = jax.vmap(lambda w: relu_loss(w, Vj))(W)
        gn = jax.vmap(lambda w: jnp.linalg.norm(relu_grad(w, Vj)))(W)
        return RunResult(W, loss, gn, res.steps, res.diverged | ~jnp.isfinite(loss))

    return Engine(engine.init, engine.advance, jax.jit(finish), engine.n_running)


def build(cfg: SweepConfig, cell: Cell) -> Programs:
    V, obj = cell_problem(cfg, cell)
    certify_cfg = cfg.certify
    if cfg.sampled is not None:
        p = sampled.make_problem(cfg.sampled, cell.d, cell.k, cell.teacher_width, cell.train.activation, cfg.seed)
        V = np.asarray(p.teacher.layers[0], np.float64)
        engine = with_closed_form_finish(sampled.make_engine(p, cell.train, cfg.sampled, cfg.seed), V)
        certify_cfg = dataclasses.replace(cfg.certify,
                                          polish_from=max(cfg.certify.polish_from, 10 * cfg.sampled.grad_tol))
    else:
        engine = make_batch_engine(cell.train, jnp.asarray(V.astype(cell.train.dtype)), cell.k, cfg.seed)
    with jax.enable_x64(True):
        cert = make_certify_batch(certify_cfg, V, obj)
    size, certify_size = batch_sizes(cfg, cell)
    return Programs(cell, V, engine, cert, size, certify_size, certify_cfg.polish_from)


def run_chunk(cfg: SweepConfig, prog: Programs, start: int, stop: int, inflight: Path | None = None) -> Chunk:
    """Train, polish, certify and cluster runs ``start … stop−1`` of a cell.

    Returns the chunk's runs rows (``orbit`` is the chunk-local orbit) and its distinct points.
    """
    cell = prog.cell
    n = stop - start
    runs = np.arange(start, stop, dtype=np.int64)
    res = train_chunk(prog.engine, padded(runs, prog.size), steps=cell.train.steps, segment_steps=cfg.segment_steps,
                      inflight=inflight, checkpoint_interval_s=cfg.checkpoint_interval_s, label=cell.label)
    res = jax.tree.map(lambda x: x[:n], res)

    status = np.where(res.diverged, DIVERGED, NOT_CONVERGED).astype(np.int32)
    W = np.asarray(res.W, np.float64)
    loss = np.asarray(res.loss, np.float64)
    gnorm = np.asarray(res.grad_norm, np.float64)
    hmin = np.full(n, np.nan)
    hmax = np.full(n, np.nan)
    iters = np.zeros(n, np.int32)
    shift = np.zeros(n)
    eligible = np.flatnonzero(~res.diverged & (res.grad_norm <= prog.polish_from))
    for first in range(0, len(eligible), prog.certify_size):  # sub-batches within the memory budget
        part = eligible[first:first + prog.certify_size]
        idx = padded(part, bucket(len(part), prog.certify_size))
        with jax.enable_x64(True):
            c: Certificate = jax.device_get(prog.certify(shard_runs(W[idx]), shard_runs(gnorm[idx]),
                                                         shard_runs(res.diverged[idx])))
        sl = slice(0, len(part))
        W[part], loss[part], gnorm[part] = c.W[sl], c.loss[sl], c.grad_norm[sl]
        hmin[part], hmax[part] = c.hess_min[sl], c.hess_max[sl]
        iters[part], shift[part], status[part] = c.polish_iters[sl], c.shift[sl], c.status[sl]

    names = np.array(STATUSES)[status]
    crit = np.flatnonzero(np.isin(names, CRITICAL))
    orbit = np.full(n, -1, dtype=np.int64)
    rows = run_rows(cfg, cell, runs, {
        "loss": loss, "grad_norm": gnorm, "steps": np.asarray(res.steps, np.int64), "status": names, "orbit": orbit,
        "train_loss": np.asarray(res.loss, np.float64), "train_grad_norm": np.asarray(res.grad_norm, np.float64),
        "polish_iters": iters, "polish_shift": shift, "hess_min": hmin, "hess_max": hmax})
    if cfg.save_weights:
        rows["W"] = list(W.reshape(n, -1))
    reps = empty_reps()
    if len(crit):
        cl = cluster(W[crit], prog.V, tol=cfg.certify.cluster_tol, order=runs[crit])
        orbit[crit] = cl.labels
        rows["orbit"] = orbit
        at = crit[cl.reps]
        reps = pd.DataFrame({"local_orbit": np.arange(len(cl.reps)), "run": runs[at], "count": cl.counts,
                             "W": list(W[at].reshape(len(at), -1)), **{c: rows[c].to_numpy()[at] for c in REP_COLUMNS}})
    return Chunk(rows, reps)


def describe_point(W: np.ndarray, V: np.ndarray, tol: float, obj: Objective, eig_tol: float = 1e-6
                   ) -> dict[str, Any]:
    """Isotropy and spectrum columns of a distinct critical point."""
    iso = isotropy(W, V, tol=tol)
    spec = group_eigenvalues(hessian_eigenvalues(W, V, obj.hessian), eig_tol)
    return {"isotropy": iso.name, "isotropy_order": iso.order, "neuron_orbits": iso.neuron_orbits,
            "coordinate_orbits": iso.coordinate_orbits, "n_distinct_eigs": len(spec),
            "eig_values": [v for v, _ in spec], "eig_mults": [m for _, m in spec]}


def merge(cfg: SweepConfig, cell: Cell, files: list[tuple[Path, Path]]) -> CellMerge:
    """Distinct critical points of a cell from its chunks' representatives, and the map
    ``(chunk position, local orbit) → orbit id``. Orbit ids are ordered by (status, loss, first run)."""
    reps = results.read_chunks([reps_path for _, reps_path in files])
    if reps is None:
        return CellMerge([], {})
    V, obj = cell_problem(cfg, cell)
    Ws = np.stack(reps["W"].to_numpy()).reshape(-1, cell.k, cell.d)
    cl = cluster(Ws, V, tol=cfg.certify.cluster_tol, order=reps["run"].to_numpy(), weights=reps["count"].to_numpy())
    rank = {s: i for i, s in enumerate(STATUSES)}
    firsts = reps.iloc[cl.reps]
    order = sorted(range(len(cl.reps)), key=lambda j: (rank[firsts["status"].iloc[j]], firsts["loss"].iloc[j],
                                                       firsts["run"].iloc[j]))
    new_id = {old: new for new, old in enumerate(order)}
    minima = []
    for old in order:
        r = firsts.iloc[old]
        W = Ws[cl.reps[old]]
        head = {"orbit": new_id[old], "status": r["status"], "loss": float(r["loss"]), "count": int(cl.counts[old]),
                "grad_norm": float(r["grad_norm"]), "hess_min": float(r["hess_min"]),
                "hess_max": float(r["hess_max"])}
        minima.append(minimum_row(cell, head, describe_point(W, V, cfg.certify.cluster_tol, obj),
                                  W.reshape(-1).tolist(), int(r["run"])))
    mapping = {(int(c), int(o)): new_id[int(lab)] for c, o, lab in zip(reps["chunk"], reps["local_orbit"], cl.labels)}
    return CellMerge(minima, mapping)


PIPELINE: CellPipeline[Programs] = CellPipeline("closed_form", build, run_chunk, merge)
