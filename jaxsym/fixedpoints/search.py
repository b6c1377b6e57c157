"""One search for critical points in fixed-point spaces: Newton from many starts, the critical ones kept, one per
orbit.

A *job* is a space and a start (random in :data:`BOX`, from ``(seed, space)`` alone, or one given: a point of a
smaller k continued, a split point); :func:`search` solves every job (one at a time, or vmapped in batches for
many at once: :func:`solve_each`, :func:`solve_batched`), lets the caller ``finish`` each solution into a
candidate (or reject it: not critical, a dead neuron), and keeps the first candidate of each orbit in job order
(``same``), with every candidate that fell on it. The atlas at one k, the scan over many k and the students
wider than the teacher are uses of it (:mod:`jaxsym.fixedpoints.atlas`, :mod:`jaxsym.fixedpoints.wide`).

A random search finds the critical points whose basins of attraction (for Newton) meet the box; it is not a
proof that there are no others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple, TypeVar

import numpy as np

from jaxsym.fixedpoints.solve import Solution, solve, solve_many
from jaxsym.fixedpoints.space import Space

T = TypeVar("T")

BOX = {"a": (-1.5, 1.5), "b": (-1.0, 1.0), "c": (-1.0, 1.0), "e": (-1.0, 1.0)}  # the starts' box per parameter
DEAD = 1e-8  # a row of norm below this is a dead neuron: F is not differentiable there, no critical point


class Job(NamedTuple):
    """A solve to run: the space, the start ``z0`` and where it came from (``random``, ``continued``, ``split``)."""

    space: Space
    z0: np.ndarray
    origin: str


def types_up_to(k: int, max_blocks: int = 3) -> list[tuple[int, ...]]:
    """The isotropy types ``Δ(S_{p_1}×…×S_{p_r})`` of ``k`` neurons with ``r ≤ max_blocks``: the partitions of
    ``k`` into at most ``max_blocks`` parts, largest block first (e.g. k = 4: (4,), (3, 1), (2, 2), (2, 1, 1))."""
    out: list[tuple[int, ...]] = []

    def parts(n: int, largest: int, left: int, prefix: tuple[int, ...]) -> None:
        if n == 0:
            out.append(prefix)
            return
        if left == 0:
            return
        for p in range(min(n, largest), 0, -1):
            parts(n - p, p, left - 1, (*prefix, p))

    parts(k, k, max_blocks, ())
    return out


def random_starts(space: Space, starts: int, seed: int) -> np.ndarray:
    """(starts, size) Newton starts in :data:`BOX` for ``space``, from ``(seed, blocks[, extra])`` alone."""
    r = space.r
    names = ["a"] * r + ["b"] * r + ["c"] * (r * r) + (["e"] * r if space.wide else [])
    lo = np.array([BOX[v][0] for v in names])
    hi = np.array([BOX[v][1] for v in names])
    entropy = [seed, *space.blocks] + ([int(space.extra)] if space.wide else [])
    return np.random.default_rng(entropy).uniform(lo, hi, size=(starts, lo.size))


def random_jobs(spaces: Iterable[Space], starts: int, seed: int) -> list[Job]:
    """``starts`` random jobs for each space, in order."""
    return [Job(s, z0, "random") for s in spaces for z0 in random_starts(s, starts, seed)]


def same_loss(loss_a: float, loss_b: float) -> bool:
    """Losses equal to 1e-10 (relative above 1): the loss half of :func:`same_point`."""
    return abs(loss_a - loss_b) <= 1e-10 * max(1.0, abs(loss_b))


def same_point(loss_a: float, iso_a: str, loss_b: float, iso_b: str) -> bool:
    """Two critical points are one orbit when their losses agree to 1e-10 (relative) and their exact isotropy
    groups have the same name (points related by the normaliser of H, e.g. two swapped blocks of equal size)."""
    return same_loss(loss_a, loss_b) and iso_a == iso_b


def row_norms(space: Space, z: np.ndarray) -> np.ndarray:
    """The k row norms of the embedded point, sorted: ``‖w‖² = a_s² + (p_s−1) b_s² + Σ_t p_t c_st²`` for each of
    the p_s rows of block s (and ``Σ_t p_t e_t²`` for the extra rows). Invariant under the whole group."""
    p = np.asarray(space.p, np.float64)
    r = space.r
    z = np.asarray(z, np.float64)
    a, b, c = z[:r], np.where(p > 1, z[r:2 * r], 0.0), z[2 * r:2 * r + r * r].reshape(r, r) * (1 - np.eye(r))
    n = np.repeat(np.sqrt(a * a + (p - 1) * b * b + (c * c) @ p), np.asarray(space.blocks, int))
    if space.wide and space.extra:
        e = z[2 * r + r * r:]
        n = np.concatenate([n, np.full(int(space.extra), np.sqrt(np.sum(p * e * e)))])
    return np.sort(n)


def solve_each(jobs: Sequence[Job]) -> list[Solution]:
    """Every job solved on its own (:func:`jaxsym.fixedpoints.solve.solve`, converged to the one rule)."""
    return [solve(j.space, j.z0) for j in jobs]


def solve_batched(jobs: Sequence[Job], tol: float) -> list[Solution]:
    """Every job solved in vmapped batches, one per layout (:func:`jaxsym.fixedpoints.solve.solve_many`, converged
    at ``tol``), each as a :class:`BatchedSolution`: the Solution with the batch's loss and trivial-block count."""
    out: list[Solution | None] = [None] * len(jobs)
    for layout in sorted({(j.space.r, j.space.wide) for j in jobs}):
        at = [i for i, j in enumerate(jobs) if (j.space.r, j.space.wide) == layout]
        s = solve_many([jobs[i].space for i in at], np.stack([jobs[i].z0 for i in at]), tol=tol)
        for n, i in enumerate(at):
            out[i] = BatchedSolution(s.z[n], float(s.grad_norm[n]), bool(s.converged[n]), float(s.loss[n]),
                                     int(s.trivial_neg[n]))
    return out  # type: ignore[return-value]


class BatchedSolution(NamedTuple):
    """A :class:`~jaxsym.fixedpoints.solve.Solution` from a batch, with the loss and the negative eigenvalues of
    the Hessian on the space solved in (:class:`jaxsym.fixedpoints.solve.Solved`)."""

    z: np.ndarray
    grad_norm: float
    converged: bool
    loss: float
    trivial_neg: int


def search(jobs: Sequence[Job], finish: Callable[[Job, Solution], T | None], same: Callable[[T, T], bool], *,
           solve_all: Callable[[Sequence[Job]], Sequence[Solution]] = solve_each) -> list[list[T]]:
    """Solve every job (``solve_all``), ``finish`` each solution into a candidate (None: rejected), and group the
    candidates by orbit (``same``), in job order: one list per distinct point, its first candidate first."""
    groups: list[list[T]] = []
    for job, sol in zip(jobs, solve_all(jobs), strict=True):
        cand = finish(job, sol)
        if cand is None:
            continue
        group = next((g for g in groups if same(g[0], cand)), None)
        if group is None:
            groups.append([cand])
        else:
            group.append(cand)
    return groups
