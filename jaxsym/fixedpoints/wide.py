"""Students wider than the teacher: fixed-point spaces of ``k = d + n`` neurons for the target ``V = I_d``.

The symmetry group of the problem is ``S_k × S_d`` (neurons × input coordinates, the teacher's rows permuted
with the coordinates). Its isotropy types ``Δ(S_{p_1}×…×S_{p_r}) × S_n`` (``Σ p_s = d``) pair r blocks of
neurons with r blocks of coordinates, as for ``k = d``, and permute ``n`` *extra* neurons among themselves:
the spaces ``Space(p, extra=n)`` of :mod:`jaxsym.fixedpoints.space`, whose restricted loss adds the extra rows'
terms. :func:`critical_points` finds their critical points with the one search
(:func:`jaxsym.fixedpoints.search.search`) from random starts and from the *split points* of the ``n = 0``
critical points, and classifies each by the index of its dense Hessian in the full ``(k d)``-dimensional space
(:func:`jaxsym.fixedpoints.spectrum.dense_spectrum`, the one index rule).

**Split points.** The ReLU is positively homogeneous, so a neuron split into ``n + 1`` parallel copies of
``1/(n+1)`` of it computes the same function: a critical point of the ``k = d`` problem whose block s has one
neuron gives a critical point of the ``k = d + n`` problem with the same loss (block s's row and the extra rows
all ``w_s/(n+1)``). Whether it is still a local minimum is the question of *annihilation* by extra neurons
(Arjevani & Field): :func:`split_point` builds it, and its dense Hessian answers (the split itself leaves
zero eigenvalues, so the index counts eigenvalues below ``−INDEX_TOL`` only).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsym.fixedpoints import atlas as narrow_atlas
from jaxsym.fixedpoints.continuation import trace
from jaxsym.fixedpoints.search import DEAD, Job, random_jobs, same_point, search, types_up_to
from jaxsym.fixedpoints.solve import Solution, solve
from jaxsym.fixedpoints.space import Space
from jaxsym.fixedpoints.spectrum import dense_spectrum, kind_of
from jaxsym.io import columns as col
from jaxsym.symmetry.group import isotropy


def split_point(blocks: tuple[int, ...], x: np.ndarray, block: int, extra: int) -> np.ndarray:
    """The ``k = d + extra`` point of the ``k = d`` point ``x`` of ``Fix(Δ(S_p))`` whose one-neuron block
    ``block`` is split into ``extra + 1`` parallel copies of ``1/(extra + 1)`` of it (module docstring)."""
    if blocks[block] != 1:
        raise ValueError(f"only a block of one neuron can be split within the space; block {block} has "
                         f"{blocks[block]}")
    r = len(blocks)
    x = np.asarray(x, np.float64)
    row = x[2 * r:].reshape(r, r)[block].copy()  # the split neuron's row, constant on each coordinate block
    row[block] = x[block]
    z = np.concatenate([x, row / (extra + 1)])
    z[block] /= extra + 1
    C = z[2 * r:2 * r + r * r].reshape(r, r)  # a view: scales c_{block, t} in z
    C[block] /= extra + 1
    return z


@dataclass(frozen=True)
class WidePoint:
    """A critical point of a wide student: the space searched, its parameters and (k, d) matrix, F, the
    full-space ‖∇F‖, the dense Hessian's index, λ_min, the number of eigenvalues within ``INDEX_TOL`` of 0, its
    exact isotropy, and where it came from (``"split"``/``"random"``)."""

    blocks: tuple[int, ...]
    extra: int
    z: np.ndarray
    W: np.ndarray
    loss: float
    grad_norm: float
    index: int
    hess_min: float
    zero_eigs: int
    isotropy: str
    origin: str


def classify(space: Space, z: np.ndarray, origin: str) -> WidePoint:
    """F, ‖∇F‖, the dense Hessian's spectrum (:func:`jaxsym.fixedpoints.spectrum.dense_spectrum`) and the exact
    isotropy of ``Ez`` in the full space."""
    from jaxsym.landscape import model

    c = dense_spectrum(space, z)
    with jax.enable_x64(True):
        W = np.asarray(space.embed(jnp.asarray(z, jnp.float64)))
        gn = float(jnp.linalg.norm(model.grad(jnp.asarray(W), jnp.eye(W.shape[1]))))
    iso = isotropy(W, np.eye(W.shape[1]))
    return WidePoint(space.blocks, int(space.extra), np.asarray(z), W, c.loss, gn, round(c.index), c.hess_min,
                     round(c.zero_eigs), iso.name, origin)


def _finish(accept: float) -> object:
    """The wide search's ``finish``: critical to ``accept`` in the restricted and the full space, no dead row."""

    def finish(job: Job, sol: Solution) -> WidePoint | None:
        space = job.space
        r = space.r
        if not sol.grad_norm <= accept or (space.extra and np.linalg.norm(sol.z[2 * r + r * r:]) < DEAD):
            return None
        pt = classify(space, sol.z, job.origin)
        if not pt.grad_norm <= accept or np.min(np.linalg.norm(pt.W, axis=1)) < DEAD:
            return None
        return pt

    return finish


def _same(a: WidePoint, b: WidePoint) -> bool:
    return same_point(a.loss, a.isotropy, b.loss, b.isotropy)


def critical_points(blocks: tuple[int, ...], extra: int, *, starts: int = 32, seed: int = 0,
                    splits: list[np.ndarray] | None = None, accept: float = 1e-10) -> list[WidePoint]:
    """Distinct critical points of ``Fix(Δ(S_p) × S_extra)`` with full-space ‖∇F‖ ≤ ``accept``: Newton from
    the ``splits`` (parameter vectors, e.g. :func:`split_point` s) and from ``starts`` random points of the box
    (:func:`jaxsym.fixedpoints.search.random_starts`, from ``(seed, blocks, extra)``); no extra neuron of norm
    below 1e-8 (a dead neuron is not a point where F is differentiable). Ordered by loss."""
    space = _space(blocks, extra)
    jobs = [Job(space, np.asarray(z, np.float64), "split") for z in (splits or [])]
    jobs += random_jobs([space], starts, seed)
    return sorted((g[0] for g in search(jobs, _finish(accept), _same)), key=lambda q: q.loss)


def _space(blocks: tuple[int, ...], extra: int) -> Space:
    if int(extra) != extra or extra < 0:
        raise ValueError(f"extra neurons must be a non-negative integer, got {extra!r}")
    return Space(tuple(blocks), extra=int(extra))


def splits(blocks: tuple[int, ...], W: np.ndarray, extra: int) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """The split points (:func:`split_point`) of a ``k = d`` point ``W`` of ``Fix(Δ(S_p))`` with ``extra`` more
    neurons, one per block: a block of one neuron is split as it is; from a larger block one neuron is first
    set apart (``W`` lies in the finer space ``(…, p_s − 1, 1, …)`` too). Returns ``(wide blocks, z)`` pairs."""
    out = []
    for s, ps in enumerate(blocks):
        fine = blocks if ps == 1 else (*blocks[:s], ps - 1, *blocks[s + 1:], 1)
        one = s if ps == 1 else len(blocks)
        x = Space(fine).project(_relabel(W, blocks, s) if ps > 1 else W)
        out.append((fine, split_point(fine, x, one, extra)))
    return out


def _relabel(W: np.ndarray, blocks: tuple[int, ...], s: int) -> np.ndarray:
    """``W`` with the last neuron and coordinate of block s moved to the end (the order of the finer space)."""
    start = sum(blocks[:s])
    last = start + blocks[s] - 1
    order = [i for i in range(len(W)) if i != last] + [last]
    return np.asarray(W)[np.ix_(order, order)]


def atlas(d: int, extra: int, *, max_blocks: int = 3, starts: int = 32, seed: int = 0,
          narrow: pd.DataFrame | None = None) -> pd.DataFrame:
    """Critical points of ``k = d + extra`` students of ``V = I_d`` in every ``Fix(Δ(S_p) × S_extra)`` with at
    most ``max_blocks`` paired blocks, from random starts and from the split points of the ``k = d`` atlas's
    minima (``narrow``: a :func:`jaxsym.fixedpoints.atlas.atlas` table at ``k = d``; computed when not given).

    Columns: ``d, k, extra, space, isotropy, loss, grad_norm, index, hess_min, zero_eigs, kind`` (the sweeps'
    ``global``, ``spurious`` for index 0, else ``saddle``), ``origin`` (``random`` or ``split``), ``split_of``
    (for split points: the loss of the ``k = d`` minimum split), ``W``. Random finds are deduplicated by loss and
    isotropy; every split point is listed (it answers whether that minimum survives ``extra`` more neurons)."""
    if narrow is None:
        narrow = narrow_atlas.atlas(d, max_blocks=max_blocks, starts=starts, seed=seed)
    rows: list[dict[str, object]] = []

    def row(pt: WidePoint, split_of: float) -> dict[str, object]:
        return {col.D: d, col.K: d + extra, col.EXTRA: extra, col.SPACE: list(pt.blocks), col.ISOTROPY: pt.isotropy,
                col.LOSS: pt.loss, col.GRAD_NORM: pt.grad_norm, col.INDEX: pt.index, col.HESS_MIN: pt.hess_min,
                col.ZERO_EIGS: pt.zero_eigs, col.KIND: kind_of(pt.loss, pt.index), col.ORIGIN: pt.origin,
                col.SPLIT_OF: split_of, col.W: pt.W.ravel().tolist()}

    for _, m in narrow[narrow[col.KIND] == "spurious"].iterrows():
        W = np.asarray(m[col.W], np.float64).reshape(d, d)
        for fine, z in splits(tuple(m[col.SPACE]), W, extra):
            rows.append(row(classify(_space(fine, extra), z, "split"), float(m[col.LOSS])))
    jobs = random_jobs([_space(b, extra) for b in types_up_to(d, max_blocks)], starts, seed)
    for g in search(jobs, _finish(1e-10), _same):
        rows.append(row(g[0], float("nan")))
    df = pd.DataFrame(rows)
    return df.sort_values([col.ORIGIN, col.LOSS], kind="stable").reset_index(drop=True) if len(df) else df


def follow(blocks: tuple[int, ...], extra: int, z: np.ndarray, *, d_to: int | None = None, n_to: int | None = None,
           step: float = 0.25) -> pd.DataFrame:
    """Continue a critical point of ``Fix(Δ(S_p) × S_extra)`` in the teacher's size d (the first block grows or
    shrinks, ``d_to``; down to a first block of one neuron) or in the number of extra neurons n (``n_to``), in
    real steps of ``step`` (both enter the restricted loss as numbers;
    :func:`jaxsym.fixedpoints.continuation.trace` without predictor, ending at the first failed correction); at
    every integer value the point is classified in the full space (:func:`classify`: dense Hessian).

    Returns one row per integer value: ``d, n, k, space, loss, grad_norm, index, hess_min, zero_eigs, isotropy``.
    """
    if (d_to is None) == (n_to is None):
        raise ValueError("give exactly one of d_to (continue in d) or n_to (continue in n)")
    tail = tuple(blocks[1:])
    d0 = sum(blocks)

    def space_at(t: float) -> Space:
        return Space((t - sum(tail), *tail), extra=float(extra)) if d_to is not None else \
            Space(tuple(blocks), extra=t)

    start = float(d0) if d_to is not None else float(extra)
    end = max(float(d_to), 1.0 + sum(tail)) if d_to is not None else max(float(n_to), 0.0)  # type: ignore[arg-type]
    try:
        pts = trace(lambda t, guess: solve(space_at(t), guess), start, z, end, lambda t, sol: (t, sol.z), step=step,
                    min_step=step, predict=False).points
    except ValueError:
        return pd.DataFrame()
    rows: list[dict[str, object]] = []
    for t, zt in pts:
        if abs(t - round(t)) < 1e-9:
            space = space_at(float(round(t)))
            pt = classify(space, zt, "follow")
            rows.append({col.D: sum(space.blocks), "n": int(space.extra), col.K: int(space.k),
                         col.SPACE: list(space.blocks),
                         col.LOSS: pt.loss, col.GRAD_NORM: pt.grad_norm, col.INDEX: pt.index, col.HESS_MIN: pt.hess_min,
                         col.ZERO_EIGS: pt.zero_eigs, col.ISOTROPY: pt.isotropy})
    return pd.DataFrame(rows)
