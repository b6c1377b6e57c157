"""Clustering end points into orbits of the symmetry group, in O(N log N).

Two points are the same critical point modulo the group when ``W₂ = g·W₁`` for some ``g ∈ G_V`` within a
tolerance. Pairwise comparison of millions of points is out of the question, so:

1. **Invariant fingerprint** per point (vectorised over the batch): sorted entries, sorted row norms and
   singular values (all unchanged by ``W ↦ P_π W P_ρᵀ``, permutation matrices being orthogonal).
2. **Hashing**: fingerprints rounded to a grid of ``10·tol`` are grouped with ``np.unique``.
3. **Confirmation**: within each group a few members are checked against the representative with the
   exact matcher :func:`jaxsym.symmetry.find_element`; a failure splits the group exactly.
4. **Boundary merge**: groups whose representatives' fingerprints lie within two grid steps (rounding can
   put one orbit on both sides of a grid line) are merged when the exact matcher agrees.

The representative of an orbit is its member with the smallest ``order`` key (the global run index), so
the result does not depend on chunking: clustering chunk representatives again gives the same orbits and
representatives as clustering all points at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaxsym.symmetry import find_element


def fingerprints(Ws: np.ndarray) -> np.ndarray:
    """Group-invariant fingerprints (N, k·d + k + min(k, d)) of points ``Ws`` (N, k, d), float64."""
    Ws = np.asarray(Ws, dtype=np.float64)
    n = Ws.shape[0]
    entries = np.sort(Ws.reshape(n, -1), axis=1)
    norms = np.sort(np.linalg.norm(Ws, axis=2), axis=1)
    sv = np.linalg.svd(Ws, compute_uv=False) if n else np.zeros((0, min(Ws.shape[1:])))
    return np.concatenate([entries, norms, sv], axis=1)


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


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = int(self.parent[x])
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def cluster(Ws: np.ndarray, V: np.ndarray | None = None, *, tol: float = 1e-6,
            order: np.ndarray | None = None, weights: np.ndarray | None = None,
            n_confirm: int = 3) -> Clustering:
    """Cluster points ``Ws`` (N, k, d) into orbits of ``G_V``.

    Args:
      Ws: points (polished critical points).
      V: target (its column structure restricts the column permutations); None for ``V = I``.
      tol: entries within ``tol`` are equal (matching tolerance).
      order: (N,) keys; the representative of an orbit is its member with the smallest key
        (default: position).
      weights: (N,) counts carried by each point (default 1), e.g. when re-clustering representatives.
      n_confirm: members per hash group checked exactly against the representative.
    """
    Ws = np.asarray(Ws, dtype=np.float64)
    n = Ws.shape[0]
    order = np.arange(n) if order is None else np.asarray(order)
    weights = np.ones(n, dtype=np.int64) if weights is None else np.asarray(weights)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Clustering(empty, empty, empty)
    F = fingerprints(Ws)
    step = 10 * tol
    keys = np.round(F / step).astype(np.int64)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.reshape(-1)

    # 3. exact confirmation inside each hash group (labels: index of the point's orbit leader)
    leader = np.empty(n, dtype=np.int64)
    by_group = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[by_group])) + 1
    for members in np.split(by_group, bounds):
        members = members[np.argsort(order[members], kind="stable")]
        rep = members[0]
        picks = members[np.unique(np.linspace(1, len(members) - 1, n_confirm).astype(int))] \
            if len(members) > 1 else members[:0]
        if all(find_element(Ws[rep], Ws[m], V, tol=tol) is not None for m in picks):
            leader[members] = rep
            continue
        leaders: list[int] = []  # rare: the hash group mixes orbits; split it exactly
        for m in members:
            hit = next((q for q in leaders if find_element(Ws[q], Ws[m], V, tol=tol) is not None), None)
            if hit is None:
                leaders.append(int(m))
                hit = int(m)
            leader[m] = hit

    # 4. merge leaders split by a grid line
    leads = np.unique(leader)
    uf = _UnionFind(n)
    if len(leads) > 1:
        diff = np.max(np.abs(F[leads][:, None, :] - F[leads][None, :, :]), axis=2)
        for a, b in zip(*np.nonzero(np.triu(diff <= 2 * step, 1))):
            p, q = int(leads[a]), int(leads[b])
            if find_element(Ws[p], Ws[q], V, tol=tol) is not None:
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
