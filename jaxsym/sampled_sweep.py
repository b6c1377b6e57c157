"""Sweeps over sampled objectives (``[sampled]`` in the sweep file): the same chunks, resume and tables.

:func:`jaxsym.sweep.run_sweep` hands a cell here when the sweep has a ``[sampled]`` section. Two paths:

- **closed form** (online SGD of the two-layer ReLU student with fixed output weights on a rotation-invariant
  law with ``E x xᵀ = I``: ``gaussian``, ``sphere``, ``student_t``): the population loss is the Gaussian
  closed form (:func:`jaxsym.distributions.closed_form_scale`), so only the *engine* changes: the sampled SGD
  end points go through the very same float64 polish, certificate, clustering and isotropy as
  :mod:`jaxsym.sweep`.
- **empirical** (everything else): each run is evaluated on a held-out sample (loss, ‖∇F̂‖ and their
  standard errors; ``stationary`` when ‖∇F̂‖ ≤ τ_g + 2 se, else ``not_converged``). :func:`cell_minima` then
  clusters the stationary runs of a cell modulo the permutation group of every layer
  (:mod:`jaxsym.layered`, after removing the ReLU rescaling with :func:`jaxsym.networks.canonical`), averages
  each cluster's aligned members into its representative, and certifies that with
  :func:`jaxsym.sampled.certify_point` (Hessian spectrum with a jackknife error); the runs of a cluster take its
  status. Statuses: ``global`` (F ≤ τ_L), ``spurious`` (λ_min ≥ max(τ_H, 2 se)), ``saddle``
  (λ_min ≤ −max(τ_H, 2 se)), ``degenerate`` (in between), ``not_converged``, ``diverged``.

Chunk files hold every run's canonical weights (column ``W``, flattened: layers row-major, then ``a``).
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

from jaxsym import layered, networks, results
from jaxsym.activations import RELU
from jaxsym.certify import STATUSES, make_certify_batch
from jaxsym.config import Cell, SweepConfig
from jaxsym.distributions import closed_form_scale
from jaxsym.model import grad as relu_grad
from jaxsym.model import loss as relu_loss
from jaxsym.sampled import (
    EVAL_SET,
    HESS_SET,
    Evaluation,
    Problem,
    certify_point,
    make_engine,
    make_evaluate_batch,
    make_problem,
)
from jaxsym.spectra import group_eigenvalues
from jaxsym.train import BatchEngine, RunResult

STATIONARY = "stationary"  # chunk-level status of a converged run, replaced by its orbit's status at the merge


def closed_form(cfg: SweepConfig, cell: Cell) -> bool:
    """Whether this cell is certified with the Gaussian closed form (see module docstring)."""
    s = cfg.sampled
    return (s is not None and s.hidden_layers == 1 and not s.train_output and s.mode == "online"
            and closed_form_scale(s.distribution, cell.train.activation) == 1.0)


def problem(cfg: SweepConfig, cell: Cell) -> Problem:
    assert cfg.sampled is not None
    return make_problem(cfg.sampled, cell.d, cell.k, cell.teacher_width, cell.train.activation, cfg.seed)


def input_colours(cell: Cell) -> np.ndarray:
    """Inputs the identity teacher of width m treats alike: the first m, and the rest."""
    return (np.arange(cell.d) >= cell.teacher_width).astype(np.int64)


@dataclass
class SampledPrograms:
    """Compiled programs of one empirical cell."""

    cell: Cell
    problem: Problem
    engine: BatchEngine
    evaluate: Any
    size: int


def _closed_form_engine(eng: BatchEngine, V: np.ndarray) -> BatchEngine:
    """The sampled engine with a :class:`~jaxsym.train.RunResult` finish (first layer, closed-form loss and
    gradient), so that :func:`jaxsym.sweep.run_chunk` certifies it like any closed-form run."""
    Vj = jnp.asarray(V, jnp.float32)

    def finish(state: Any) -> RunResult:
        res = eng.finish(state)
        W = res.params.layers[0]
        loss = jax.vmap(lambda w: relu_loss(w, Vj))(W)
        gn = jax.vmap(lambda w: jnp.linalg.norm(relu_grad(w, Vj)))(W)
        return RunResult(W, loss, gn, res.steps, res.diverged | ~jnp.isfinite(loss))

    return BatchEngine(eng.init, eng.advance, jax.jit(finish), eng.n_running)


def build_programs(cfg: SweepConfig, cell: Cell, size: int, certify_size: int) -> Any:
    """:class:`jaxsym.sweep.CellPrograms` for a closed-form cell, else :class:`SampledPrograms`."""
    from jaxsym.sweep import CellPrograms

    p = problem(cfg, cell)
    assert cfg.sampled is not None
    eng = make_engine(p, cell.train, cfg.sampled, cfg.seed)
    if closed_form(cfg, cell):
        V = np.asarray(p.teacher.layers[0], np.float64)
        # SGD's averaged end points sit ~1e-3 from a critical point (sampling noise): polish from up to
        # 10·sampled.grad_tol, not only from the certify default tuned for full-batch float32 descent
        certify = dataclasses.replace(cfg.certify,
                                      polish_from=max(cfg.certify.polish_from, 10 * cfg.sampled.grad_tol))
        with jax.enable_x64(True):
            cert = make_certify_batch(certify, V, RELU)
        return CellPrograms(cell, V, _closed_form_engine(eng, V), cert, size, certify_size, certify.polish_from)
    X, y = p.draw(EVAL_SET, cfg.sampled.eval_samples, cfg.seed)
    return SampledPrograms(cell, p, eng, make_evaluate_batch(p, X, y, cfg.sampled.eval_blocks), size)


def run_chunk(cfg: SweepConfig, prog: SampledPrograms, start: int, stop: int, inflight: Path | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and evaluate runs ``start … stop−1`` of an empirical cell; rows as in :mod:`jaxsym.sweep` (with
    ``orbit`` = position in the chunk for stationary runs, −1 otherwise) and an empty representatives frame."""
    from jaxsym.sweep import REP_COLUMNS, _padded, train_chunk

    assert cfg.sampled is not None
    cell, s = prog.cell, cfg.sampled
    n = stop - start
    runs = np.arange(start, stop, dtype=np.int64)
    padded = _padded(runs, prog.size)
    res = train_chunk(cfg, prog, padded, inflight)  # type: ignore[arg-type]
    ev: Evaluation = jax.device_get(prog.evaluate(jax.tree.map(jnp.asarray, res.params)))
    res, ev = jax.tree.map(lambda x: x[:n], (res, ev))
    loss, gn, gse = (np.asarray(x, np.float64) for x in (ev.loss, ev.grad_norm, ev.grad_se))
    diverged = np.asarray(res.diverged) | ~np.isfinite(loss) | ~np.isfinite(gn)
    stationary = ~diverged & (gn <= s.grad_tol + 2 * gse)
    status = np.where(diverged, "diverged", np.where(stationary, STATIONARY, "not_converged"))
    host = jax.tree.map(lambda x: np.asarray(x, np.float64), res.params)
    flat = [networks.flatten(networks.canonical(jax.tree.map(lambda x, i=i: x[i], host), cell.train.activation))
            for i in range(n)]
    rows = pd.DataFrame({
        "d": cell.d, "k": cell.k, "run": runs, "seed": cfg.seed, "loss": loss, "grad_norm": gn,
        "steps": np.asarray(res.steps, np.int64), "status": status,
        "orbit": np.where(stationary, np.arange(n), -1).astype(np.int64),
        "loss_se": np.asarray(ev.loss_se, np.float64), "grad_se": gse,
        "cell": cell.label, "m": cell.teacher_width, "target": cell.target,
        "distribution": s.distribution, "hidden_layers": s.hidden_layers, "train_output": s.train_output,
        "W": flat,
    })
    for name, value in cell.overrides:
        rows[name] = value
    return rows, pd.DataFrame(columns=["local_orbit", "run", "count", "W", *REP_COLUMNS])


# --------------------------------------------------------------------------------------------------
# Merge: clusters modulo the layered group, certified representatives
# --------------------------------------------------------------------------------------------------
def _net(flat: np.ndarray, cell: Cell, cfg: SweepConfig) -> networks.Trainable:
    s = cfg.sampled
    assert s is not None
    return networks.unflatten(flat, cell.d, cell.k, s.hidden_layers, s.train_output)


@dataclass
class _Cluster:
    first: int           # row index of the first member
    total: np.ndarray    # sum of the aligned members (flat)
    count: int
    rep: networks.Trainable


def cluster_points(points: list[networks.Trainable], tol: float, colours: np.ndarray
                   ) -> tuple[list[np.ndarray], list[int], list[int], np.ndarray]:
    """Greedy clustering modulo the layered group: each point joins the first cluster whose first member it
    maps onto within ``tol`` (:func:`jaxsym.layered.find_element`), aligned onto it.

    Returns (aligned mean of each cluster, flat), first member index per cluster, counts, labels per point.
    """
    clusters: list[_Cluster] = []
    labels = np.full(len(points), -1, np.int64)
    for i, q in enumerate(points):
        for c, cl in enumerate(clusters):
            g = layered.find_element(list(q.layers), q.a, list(cl.rep.layers), cl.rep.a, tol=tol,
                                     input_colours=colours)
            if g is not None:
                moved, a = layered.apply(g, list(q.layers), q.a)
                cl.total += networks.flatten(networks.Trainable(tuple(moved), a))
                cl.count += 1
                labels[i] = c
                break
        else:
            labels[i] = len(clusters)
            clusters.append(_Cluster(i, networks.flatten(q).copy(), 1, q))
    return [c.total / c.count for c in clusters], [c.first for c in clusters], [c.count for c in clusters], labels


def group_by_type(points: list[networks.Trainable], losses: np.ndarray, loss_se: np.ndarray, tol: float,
                  colours: np.ndarray, loss_tol: float) -> tuple[list[np.ndarray], list[int], list[int], np.ndarray]:
    """Grouping for deep networks, whose critical points are not isolated (with ReLU, a second layer sees only
    non-negative inputs, so e.g. every ``W_2 ≥ 0`` with ``aᵀW_2 = 𝟙ᵀ`` over ``W_1 = I`` is a global minimum):
    runs with the same isotropy type *of the first layer* ``W_1`` (alone, in ``S_k × S_d``; the whole net's
    isotropy is mostly trivial on such continua) and the same loss — within
    3 joint standard errors + 0.1 %, or both ≤ ``loss_tol`` — form one group, represented by its first member.

    Returns what :func:`cluster_points` returns (the representatives are first members, not means).
    """
    keys: list[tuple[str, float, float]] = []
    firsts: list[int] = []
    counts: list[int] = []
    labels = np.full(len(points), -1, np.int64)
    for i, q in enumerate(points):
        name = layered.isotropy([q.layers[0]], None, tol=tol, input_colours=colours, limit=2000).name
        for c, (n2, l2, s2) in enumerate(keys):
            same_loss = (losses[i] <= loss_tol and l2 <= loss_tol) or \
                abs(losses[i] - l2) <= 3 * np.hypot(loss_se[i], s2) + 1e-3 * max(losses[i], l2)
            if n2 == name and same_loss:
                labels[i] = c
                counts[c] += 1
                break
        else:
            labels[i] = len(keys)
            keys.append((name, float(losses[i]), float(loss_se[i])))
            firsts.append(i)
            counts.append(1)
    return [networks.flatten(points[i]) for i in firsts], firsts, counts, labels


def _status(cert: Any, s: Any) -> str:
    if cert.loss <= s.loss_tol:
        return "global"
    if cert.grad_norm > s.grad_tol + 2 * cert.grad_se:
        return "not_converged"
    if not np.isfinite(cert.eigs[0]):
        return "degenerate"
    margin = max(s.hess_tol, 2 * cert.hess_min_se)
    lam = float(cert.eigs[0])
    return "spurious" if lam >= margin else "saddle" if lam <= -margin else "degenerate"


def cell_minima(cfg: SweepConfig, cell: Cell, files: list[tuple[Path, Path]]
                ) -> tuple[list[dict[str, Any]], dict[tuple[int, int], int]]:
    """Distinct stationary points of an empirical cell and the map ``(chunk, position) → orbit``."""
    s = cfg.sampled
    assert s is not None
    rows = results.read_chunks([runs_path for runs_path, _ in files])
    if rows is None:
        return [], {}
    rows = rows[rows["status"] == STATIONARY].sort_values("run", kind="stable").reset_index(drop=True)
    if not len(rows):
        return [], {}
    colours = input_colours(cell)
    points = [_net(np.asarray(w), cell, cfg) for w in rows["W"]]
    by_type = s.hidden_layers > 1
    if by_type:
        means, firsts, counts, labels = group_by_type(points, rows["loss"].to_numpy(), rows["loss_se"].to_numpy(),
                                                      s.cluster_tol, colours, s.loss_tol)
    else:
        means, firsts, counts, labels = cluster_points(points, s.cluster_tol, colours)
    p = problem(cfg, cell)
    with jax.enable_x64(True):
        X, y = p.draw(HESS_SET, s.hess_samples, cfg.seed, jnp.float64)
        described = []
        for c, mean in enumerate(means):
            net = networks.canonical(_net(mean, cell, cfg), cell.train.activation)
            params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), net)
            # a deep net's global minima form continua: their (degenerate) Hessian is not computed
            skip = by_type and float(rows["loss"].iloc[firsts[c]]) <= s.loss_tol
            cert = certify_point(p, params, X, y, eval_blocks=s.hess_blocks, hess_blocks=s.hess_blocks,
                                 fd_step=s.fd_step, tangents=networks.scaling_tangents(net, cell.train.activation),
                                 hessian=not skip)
            iso = layered.isotropy(list(net.layers), net.a, tol=s.cluster_tol, input_colours=colours)
            first_iso = layered.isotropy([net.layers[0]], None, tol=s.cluster_tol, input_colours=colours)
            described.append((c, net, cert, iso, first_iso))
    rank = {name: i for i, name in enumerate(STATUSES)}
    order = sorted(described, key=lambda t: (rank[_status(t[2], s)], t[2].loss, int(rows["run"].iloc[firsts[t[0]]])))
    new_id = {c: i for i, (c, *_) in enumerate(order)}
    minima = []
    for c, net, cert, iso, first_iso in order:
        spec = group_eigenvalues(cert.eigs, s.eig_tol) if np.all(np.isfinite(cert.eigs)) else []
        first = rows.iloc[firsts[c]]
        minima.append({
            "d": cell.d, "k": cell.k, "orbit": new_id[c], "status": _status(cert, s), "loss": cert.loss,
            "count": counts[c], "grad_norm": cert.grad_norm, "hess_min": float(cert.eigs[0]),
            "hess_max": float(cert.eigs[-1]),  # hess_min/max are NaN where no Hessian was taken (deep global)
            "isotropy": iso.name, "isotropy_order": iso.order,
            "neuron_orbits": iso.neuron_orbits, "coordinate_orbits": iso.layer_orbits[0],
            "layer_orbits": [list(o) for o in iso.layer_orbits], "isotropy_exact": iso.exact,
            "first_layer_isotropy": first_iso.name,
            "n_distinct_eigs": len(spec), "eig_values": [v for v, _ in spec], "eig_mults": [m for _, m in spec],
            "eigs": cert.eigs.tolist(),
            "loss_se": cert.loss_se, "grad_se": cert.grad_se, "hess_min_se": cert.hess_min_se,
            "n_null": cert.n_null, "W": networks.flatten(net).tolist(), "rep_run": int(first["run"]),
            "cell": cell.label, "m": cell.teacher_width, "target": cell.target,
            "distribution": s.distribution, "hidden_layers": s.hidden_layers, "train_output": s.train_output,
            **dict(cell.overrides),
        })
    mapping = {(int(ch), int(pos)): new_id[int(lab)]
               for ch, pos, lab in zip(rows["chunk"], rows["orbit"], labels)}
    return minima, mapping

