"""Clustering points into orbits of a symmetry group: the one clusterer of the project, in O(N log N).

Two points are the same modulo the group when a *matcher* finds ``g`` with ``g·P₁ = P₂`` within a tolerance.
Pairwise comparison of millions of points is out of the question, so :func:`cluster_by` does:

1. **Hashing** (when an invariant *fingerprint* is given): fingerprints rounded to a grid of ``step`` are
   grouped with ``np.unique``; without one, all points form one group.
2. **Confirmation**: within each group a few members (``n_confirm``; all of them when ``None``) are checked
   against the representative with the matcher; a failure splits the group exactly and greedily (each point
   joins the first leader it matches, in ``order``).
3. **Boundary merge** (with a fingerprint): groups whose leaders' fingerprints lie within two grid steps
   (rounding can put one orbit on both sides of a grid line) are merged when the matcher agrees.

The representative of an orbit is its member with the smallest ``order`` key (the global run index), so the
result does not depend on chunking: clustering chunk representatives again gives the same orbits and
representatives as clustering all points at once.

Uses: :func:`cluster` (points of any :class:`jaxsym.symmetry.groups.Group`: its fingerprint and matcher; for
two-layer points sorted entries, row norms and singular values, and :func:`jaxsym.symmetry.group.find_element`),
and the sampled pipeline (layered networks, or groups by isotropy type and loss, no fingerprint).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jaxsym.symmetry.group import UnionFind
from jaxsym.symmetry.groups import Group, TwoLayer

Matcher = Callable[[int, int], bool]  # match(leader, member): are points leader and member one orbit?


@dataclass
class Clustering:
    """Orbits of a set of points.

    Attributes:
      labels: (N,) orbit label per point, 0..n_orbits−1, numbered by the order of representatives.
      reps: (n_orbits,) index of each orbit's representative (smallest order key).
      counts: (n_orbits,) total weight per orbit.
    """

    labels: np.ndarray
    reps: np.ndarray
    counts: np.ndarray


def cluster_by(n: int, match: Matcher, *, fingerprint: np.ndarray | None = None, step: float = 0.0,
               order: np.ndarray | None = None, weights: np.ndarray | None = None,
               n_confirm: int | None = 3) -> Clustering:
    """Cluster ``n`` points into orbits (module docstring).

    Args:
      n: number of points; the matcher addresses them by index.
      match: ``match(leader, member)`` is True when the two points are one orbit.
      fingerprint: (n, F) group-invariant features, hashed on a grid of ``step``; None puts every point in
        one group (then ``n_confirm=None`` gives the plain greedy clustering).
      order: (n,) keys; the representative of an orbit is its member with the smallest key (default:
        position).
      weights: (n,) counts carried by each point (default 1), e.g. when re-clustering representatives.
      n_confirm: members per hash group checked against the representative; None checks every member.
    """
    order = np.arange(n) if order is None else np.asarray(order)
    weights = np.ones(n, dtype=np.int64) if weights is None else np.asarray(weights)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Clustering(empty, empty, empty)
    if fingerprint is None:
        group = np.zeros(n, dtype=np.int64)
    else:
        keys = np.round(fingerprint / step).astype(np.int64)
        group = np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)

    # confirmation inside each hash group (labels: index of the point's orbit leader)
    leader = np.empty(n, dtype=np.int64)
    by_group = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[by_group])) + 1
    for members in np.split(by_group, bounds):
        members = members[np.argsort(order[members], kind="stable")]
        rep = members[0]
        if n_confirm is not None:
            picks = members[np.unique(np.linspace(1, len(members) - 1, n_confirm).astype(int))] \
                if len(members) > 1 else members[:0]
            if all(match(int(rep), int(m)) for m in picks):
                leader[members] = rep
                continue
        leaders: list[int] = []  # the hash group mixes orbits (or is not hashed): split it greedily
        for m in members:
            hit = next((q for q in leaders if match(q, int(m))), None)
            if hit is None:
                leaders.append(int(m))
                hit = int(m)
            leader[m] = hit

    # merge leaders split by a grid line
    leads = np.unique(leader)
    uf = UnionFind(n)
    if fingerprint is not None and len(leads) > 1:
        F = fingerprint
        diff = np.max(np.abs(F[leads][:, None, :] - F[leads][None, :, :]), axis=2)
        for a, b in zip(*np.nonzero(np.triu(diff <= 2 * step, 1))):
            p, q = int(leads[a]), int(leads[b])
            if match(p, q):
                uf.union(p, q)
    root = np.array([uf.find(int(x)) for x in leader])

    # representatives: smallest order key per orbit; number orbits by their representatives' keys
    roots, root_idx = np.unique(root, return_inverse=True)
    by = np.lexsort((order, root_idx))  # grouped by orbit, smallest order key first
    first = np.concatenate([[True], np.diff(root_idx[by]) != 0])
    reps = by[first]  # reps[j] belongs to orbit root j
    rank = np.argsort(order[reps], kind="stable")
    reps = reps[rank]
    relabel = np.empty(len(roots), dtype=np.int64)
    relabel[rank] = np.arange(len(roots))
    labels = relabel[root_idx.reshape(-1)]
    counts = np.bincount(labels, weights=weights, minlength=len(reps)).astype(np.int64)
    return Clustering(labels, reps, counts)


def cluster(points: Sequence[Any], group: Group | None = None, *, tol: float = 1e-6,
            order: np.ndarray | None = None, weights: np.ndarray | None = None,
            n_confirm: int | None = 3) -> Clustering:
    """Cluster ``points`` into orbits of ``group`` (:func:`cluster_by` with the group's invariant fingerprint on a
    grid of ``10·tol``, where it has one, and its exact matcher).

    Args:
      points: e.g. polished critical points (N, k, d) of the two-layer student.
      group: a :class:`jaxsym.symmetry.groups.Group`; None is :class:`~jaxsym.symmetry.groups.TwoLayer` of the
        target ``V = I`` (every column permutation).
      tol: entries within ``tol`` are equal (matching tolerance).
      order, weights, n_confirm: as in :func:`cluster_by`.
    """
    group = TwoLayer() if group is None else group

    def match(i: int, j: int) -> bool:
        return group.match(points[i], points[j], tol) is not None

    F = group.fingerprint(points) if len(points) else None
    return cluster_by(len(points), match, fingerprint=F, step=10 * tol, order=order, weights=weights,
                      n_confirm=n_confirm)
