"""The empirical cell pipeline: sampled objectives without a closed form, certified on held-out samples.

Cells of a ``[sampled]`` sweep whose population loss has no closed form (other laws, trainable output
weights, deeper networks; :func:`jaxsym.engine.sgd.has_closed_form` is False). Each run is trained by the
sampled-SGD :class:`~jaxsym.engine.interface.Engine` and evaluated on a held-out sample (loss, ‖∇F̂‖ and their standard
errors; ``stationary`` when ‖∇F̂‖ ≤ τ_g + 2 se, else ``not_converged``). Chunk files hold every run's
canonical weights (column ``W``, flattened: layers row-major, then ``a``).

The merge clusters a cell's stationary runs modulo the permutation group of every layer
(:func:`jaxsym.symmetry.group.find_net_element`, after removing the ReLU rescaling with
:func:`jaxsym.landscape.networks.canonical`) with the project's clusterer (:func:`jaxsym.symmetry.orbits.cluster_by`),
averages
each cluster's aligned members into its representative, and certifies that with
:func:`jaxsym.certify.empirical.certify_point` (Hessian spectrum with a jackknife error); the runs of a cluster take its
status, from :func:`jaxsym.certify.exact.classify` with margins widened by the standard errors: ``global``
(F ≤ τ_L), ``not_converged`` (‖∇F̂‖ > τ_g + 2 se), ``spurious`` (λ_min ≥ max(τ_H, 2 se)), ``saddle``
(λ_min ≤ −max(τ_H, 2 se)), ``degenerate`` (in between, or no Hessian).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.certify.empirical import Evaluation, PointCertificate, certify_point, make_evaluate_batch
from jaxsym.certify.exact import STATUSES, classify
from jaxsym.config import Cell, SampledConfig, SweepConfig
from jaxsym.engine.interface import Engine, padded, train_chunk
from jaxsym.engine.sgd import EVAL_SET, HESS_SET, Problem, make_engine, make_problem
from jaxsym.io import columns as col
from jaxsym.io import results
from jaxsym.io.columns import empty_reps, minimum_row, run_rows
from jaxsym.landscape import networks
from jaxsym.landscape.students import Student
from jaxsym.sweep.pipeline import CellMerge, CellPipeline, Chunk
from jaxsym.sweep.plan import CellPlan
from jaxsym.symmetry.groups import LayeredUnits
from jaxsym.symmetry.orbits import cluster_by
from jaxsym.symmetry.spectra import group_eigenvalues

STATIONARY = "stationary"  # chunk-level status of a converged run, replaced by its orbit's status at the merge


def _sampled(cfg: SweepConfig) -> SampledConfig:
    if cfg.sampled is None:
        raise ValueError("the empirical pipeline needs a [sampled] section")
    return cfg.sampled


def problem(cfg: SweepConfig, cell: Cell) -> Problem:
    return make_problem(_sampled(cfg), cell.d, cell.k, cell.teacher_width, cell.train.activation, cfg.seed)


def input_colours(cell: Cell, p: Problem | None = None) -> np.ndarray:
    """Inputs the teacher treats alike: for the identity teacher of width m the first m, and the rest; for a
    user's teacher, found from it (:func:`jaxsym.landscape.flax_students.input_colours`)."""
    if p is not None and not isinstance(p.teacher, networks.Net):
        from jaxsym.landscape.flax_students import input_colours as found

        return found(p.teacher, cell.d)
    return (np.arange(cell.d) >= cell.teacher_width).astype(np.int64)


@dataclass
class Programs:
    """Compiled programs of one empirical cell."""

    cell: Cell
    problem: Problem
    engine: Engine[Any, Any]
    evaluate: Any  # jitted params (batched) -> Evaluation
    size: int


def build(cfg: SweepConfig, plan: CellPlan) -> Programs:
    s = _sampled(cfg)
    cell = plan.cell
    p = problem(cfg, cell)
    X, y = p.draw(EVAL_SET, s.eval_samples, cfg.seed)
    return Programs(cell, p, make_engine(p, cell.train, s, cfg.seed), make_evaluate_batch(p, X, y, s.eval_blocks),
                    plan.padded)


def run_chunk(cfg: SweepConfig, prog: Programs, start: int, stop: int, inflight: Path | None = None) -> Chunk:
    """Train and evaluate runs ``start … stop−1``; ``orbit`` = position in the chunk for stationary runs, −1
    otherwise; no representatives (clustering waits for the merge)."""
    s = _sampled(cfg)
    cell = prog.cell
    n = stop - start
    runs = np.arange(start, stop, dtype=np.int64)
    res = train_chunk(prog.engine, padded(runs, prog.size), steps=cell.train.steps, segment_steps=cfg.segment_steps,
                      inflight=inflight, checkpoint_interval_s=cfg.checkpoint_interval_s, label=cell.label)
    ev: Evaluation = jax.device_get(prog.evaluate(jax.tree.map(jnp.asarray, res.params)))
    res, ev = jax.tree.map(lambda x: x[:n], (res, ev))
    loss, gn, gse = (np.asarray(x, np.float64) for x in (ev.loss, ev.grad_norm, ev.grad_se))
    diverged = np.asarray(res.diverged) | ~np.isfinite(loss) | ~np.isfinite(gn)
    stationary = ~diverged & (gn <= s.grad_tol + 2 * gse)
    status = np.where(diverged, "diverged", np.where(stationary, STATIONARY, "not_converged"))
    host = jax.tree.map(lambda x: np.asarray(x, np.float64), res.params)
    student = prog.problem.student
    flat = [student.flatten(student.canonical(jax.tree.map(lambda x, i=i: x[i], host))) for i in range(n)]
    rows = run_rows(cfg, cell, runs, {
        col.LOSS: loss, col.GRAD_NORM: gn, col.STEPS: np.asarray(res.steps, np.int64), col.STATUS: status,
        col.ORBIT: np.where(stationary, np.arange(n), -1).astype(np.int64),
        col.LOSS_SE: np.asarray(ev.loss_se, np.float64), col.GRAD_SE: gse,
    }, {col.DISTRIBUTION: s.distribution, col.HIDDEN_LAYERS: student.hidden_layers,
        col.TRAIN_OUTPUT: student.train_output, col.W: flat})
    return Chunk(rows, empty_reps())


# --------------------------------------------------------------------------------------------------
# Merge: clusters modulo the layered group, certified representatives
# --------------------------------------------------------------------------------------------------
class Groups(NamedTuple):
    """Stationary runs grouped: representative (flat), first member, count per group, and a label per run."""

    reps: list[np.ndarray]
    firsts: list[int]
    counts: list[int]
    labels: np.ndarray


def cluster_points(student: Student, points: list[Any], tol: float, colours: np.ndarray) -> Groups:
    """Greedy clustering modulo the layered group (:class:`jaxsym.symmetry.groups.LayeredUnits`: each point
    joins the first cluster whose first member it maps onto within ``tol``); a cluster's representative is the
    mean of its members aligned onto the first."""
    group = LayeredUnits(colours, constant=student.constant)
    nets = [student.layered(q) for q in points]
    found: dict[tuple[int, int], Any] = {}  # (point, leader) -> the element mapping the point onto its leader

    def match(lead: int, m: int) -> bool:
        g = group.match(nets[m], nets[lead], tol)
        if g is not None:
            found[(m, lead)] = g
        return g is not None

    cl = cluster_by(len(points), match, n_confirm=None)
    totals = [student.flatten(points[int(r)]).copy() for r in cl.reps]
    for i, lab in enumerate(cl.labels):
        lead = int(cl.reps[lab])
        if i != lead:
            moved, a = group.act(found[(i, lead)], nets[i])
            totals[lab] += student.flatten(student.from_layered(list(moved), a))
    return Groups([t / c for t, c in zip(totals, cl.counts)], [int(r) for r in cl.reps], [int(c) for c in cl.counts],
                  cl.labels)


def group_by_type(student: Student, points: list[Any], losses: np.ndarray, loss_se: np.ndarray, tol: float,
                  colours: np.ndarray, loss_tol: float) -> Groups:
    """Grouping for deep networks, whose critical points are not isolated (with ReLU, a second layer sees only
    non-negative inputs, so e.g. every ``W_2 ≥ 0`` with ``aᵀW_2 = 𝟙ᵀ`` over ``W_1 = I`` is a global minimum):
    runs with the same isotropy type *of the first layer* ``W_1`` (alone, in ``S_k × S_d``; the whole net's
    isotropy is mostly trivial on such continua) and the same loss — within 3 joint standard errors + 0.1 %, or
    both ≤ ``loss_tol`` — form one group, represented by its first member."""
    first = LayeredUnits(colours, limit=2000, constant=student.constant)
    names = [first.isotropy(([student.layered(q)[0][0]], None), tol).name for q in points]

    def same(lead: int, i: int) -> bool:
        same_loss = (losses[i] <= loss_tol and losses[lead] <= loss_tol) or \
            abs(losses[i] - losses[lead]) <= 3 * np.hypot(loss_se[i], loss_se[lead]) + 1e-3 * max(losses[i],
                                                                                                   losses[lead])
        return names[lead] == names[i] and bool(same_loss)

    cl = cluster_by(len(points), same, n_confirm=None)
    return Groups([student.flatten(points[int(r)]) for r in cl.reps], [int(r) for r in cl.reps],
                  [int(c) for c in cl.counts], cl.labels)


class _Margins(NamedTuple):
    loss_tol: float
    grad_tol: float
    hess_tol: float


def status(cert: PointCertificate, s: SampledConfig) -> str:
    """The empirical status of a certified point (module docstring)."""
    tol = _Margins(s.loss_tol, s.grad_tol + 2 * cert.grad_se, max(s.hess_tol, 2 * cert.hess_min_se))
    return STATUSES[int(classify(np.float64(cert.loss), np.float64(cert.grad_norm), np.float64(cert.eigs[0]),
                                 np.False_, tol, xp=np))]


def merge(cfg: SweepConfig, plan: CellPlan, files: list[tuple[Path, Path]]) -> CellMerge:
    """Distinct stationary points of an empirical cell and the map ``(chunk, position) → orbit``."""
    s = _sampled(cfg)
    cell = plan.cell
    rows = results.read_chunks([runs_path for runs_path, _ in files])
    if rows is None:
        return CellMerge([], {}, True)
    rows = rows[rows[col.STATUS] == STATIONARY].sort_values(col.RUN, kind="stable").reset_index(drop=True)
    if not len(rows):
        return CellMerge([], {}, True)
    p = problem(cfg, cell)
    student = p.student
    colours = input_colours(cell, p)
    points = [student.unflatten(np.asarray(w)) for w in rows[col.W]]
    by_type = student.hidden_layers > 1
    if by_type:
        groups = group_by_type(student, points, rows[col.LOSS].to_numpy(), rows[col.LOSS_SE].to_numpy(),
                               s.cluster_tol, colours, s.loss_tol)
    else:
        groups = cluster_points(student, points, s.cluster_tol, colours)
    group = LayeredUnits(colours, constant=student.constant)
    with jax.enable_x64(True):
        X, y = p.draw(HESS_SET, s.hess_samples, cfg.seed, jnp.float64)
        described = []
        for c, mean in enumerate(groups.reps):
            net = student.canonical(student.unflatten(mean))
            params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), net)
            # a deep net's global minima form continua: their (degenerate) Hessian is not computed
            skip = by_type and float(rows[col.LOSS].iloc[groups.firsts[c]]) <= s.loss_tol
            cert = certify_point(p, params, X, y, eval_blocks=s.hess_blocks, hess_blocks=s.hess_blocks,
                                 fd_step=s.fd_step, tangents=student.tangents(net),
                                 hessian=not skip)
            layers, a = student.layered(net)
            iso = group.isotropy((layers, a), s.cluster_tol)
            first_iso = group.isotropy(([layers[0]], None), s.cluster_tol)
            described.append((c, net, cert, iso, first_iso))
    rank = {name: i for i, name in enumerate(STATUSES)}
    order = sorted(described, key=lambda t: (rank[status(t[2], s)], t[2].loss,
                                             int(rows[col.RUN].iloc[groups.firsts[t[0]]])))
    new_id = {c: i for i, (c, *_) in enumerate(order)}
    minima = []
    for c, net, cert, iso, first_iso in order:
        spec = group_eigenvalues(cert.eigs, s.eig_tol) if np.all(np.isfinite(cert.eigs)) else []
        head = {col.ORBIT: new_id[c], col.STATUS: status(cert, s), col.LOSS: cert.loss, col.COUNT: groups.counts[c],
                col.GRAD_NORM: cert.grad_norm, col.HESS_MIN: float(cert.eigs[0]),
                col.HESS_MAX: float(cert.eigs[-1])}  # hess_min/max are NaN where no Hessian was taken (deep global)
        described_cols = {
            col.ISOTROPY: iso.name, col.ISOTROPY_ORDER: iso.order, col.NEURON_ORBITS: iso.neuron_orbits,
            col.COORDINATE_ORBITS: iso.layer_orbits[0], col.LAYER_ORBITS: [list(o) for o in iso.layer_orbits],
            col.ISOTROPY_EXACT: iso.exact, col.FIRST_LAYER_ISOTROPY: first_iso.name,
            col.N_DISTINCT_EIGS: len(spec), col.EIG_VALUES: [v for v, _ in spec], col.EIG_MULTS: [m for _, m in spec],
            col.EIGS: cert.eigs.tolist(), col.LOSS_SE: cert.loss_se, col.GRAD_SE: cert.grad_se,
            col.HESS_MIN_SE: cert.hess_min_se, col.N_NULL: cert.n_null}
        extra = {col.DISTRIBUTION: s.distribution, col.HIDDEN_LAYERS: student.hidden_layers,
                 col.TRAIN_OUTPUT: student.train_output}
        minima.append(minimum_row(cell, head, described_cols, student.flatten(net).tolist(),
                                  int(rows[col.RUN].iloc[groups.firsts[c]]), extra))
    mapping = {(int(ch), int(pos)): new_id[int(lab)]
               for ch, pos, lab in zip(rows[col.CHUNK], rows[col.ORBIT], groups.labels)}
    return CellMerge(minima, mapping, True)


PIPELINE: CellPipeline[Programs] = CellPipeline("empirical", build, run_chunk, merge)
