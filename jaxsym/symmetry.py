"""The symmetry group of the loss, isotropy groups of points and exact equivalence of points.

**Group.** ``G = S_k × S_d`` acts on ``W ∈ R^{k×d}`` by ``g·W = P_π W P_ρᵀ``: entry ``(i, a)`` of ``W``
moves to ``(π(i), ρ(a))``. The loss is invariant under the subgroup ``G_V`` of elements that map the
target ``V`` to a row permutation of itself: all of ``G`` for ``V = I`` (k = d); ``ΔS_k × S_{d−k}``-type
column constraints for ``V = [I_k 0]``. We encode ``G_V`` by *column colours* (columns of ``V`` that are
equal as multisets get one colour; ``ρ`` must preserve colours). That is exact for the identity targets and
for targets whose columns are pairwise distinct as multisets (then ``ρ`` is the identity, as for random
targets); for other ``V`` it is a necessary condition only, and the group found may be too large.

**Isotropy** (the stabiliser ``G_W = {g ∈ G_V : g·W = W}``), exactly, without enumerating ``k!``:

1. Entries of ``W`` are quantised into value classes (values closer than ``tol`` share a class).
2. Colour refinement (1-dim Weisfeiler–Leman) of the weighted bipartite neuron/coordinate graph gives
   canonical row cells and column cells; every element of ``G_W`` preserves them.
3. ``G_W`` maps onto a group of row permutations ``R ⊆ Π S_{cell}`` with kernel ``K`` = permutations of
   identical columns (``|G_W| = |R|·|K|``). A row permutation π lies in ``R`` iff the columns of
   ``P_π W`` are a colour-preserving permutation of the columns of ``W`` — a sort, so membership is cheap.
4. If the transpositions ``(c₀ c_j)`` of every row cell lie in ``R``, then ``R = Π S_{cell}`` exactly
   (they generate it, and ``R`` preserves cells): the product-type case of the papers, O(k) membership
   tests. Otherwise ``R`` is enumerated by a pruned backtrack (small groups only).

**Equivalence** of two points: joint colour refinement with individualisation and backtracking finds
``g`` with ``g·W₁ = W₂`` or proves there is none (within ``tol``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Perm = np.ndarray  # int array, a permutation of range(n)


# --------------------------------------------------------------------------------------------------
# Group elements
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Element:
    """``g = (π, ρ) ∈ S_k × S_d``; ``g·W`` moves entry ``(i, a)`` to ``(π[i], ρ[a])``."""

    pi: Perm
    rho: Perm

    def __call__(self, W: np.ndarray) -> np.ndarray:
        return apply(self, W)

    def __repr__(self) -> str:
        return f"Element(pi={self.pi.tolist()}, rho={self.rho.tolist()})"


def identity(k: int, d: int) -> Element:
    return Element(np.arange(k), np.arange(d))


def apply(g: Element, W: np.ndarray) -> np.ndarray:
    """``P_π W P_ρᵀ``: ``out[π[i], ρ[a]] = W[i, a]``."""
    return np.asarray(W)[np.ix_(np.argsort(g.pi), np.argsort(g.rho))]


def compose(g: Element, h: Element) -> Element:
    """``g ∘ h`` (apply h first): ``apply(compose(g, h), W) == apply(g, apply(h, W))``."""
    return Element(g.pi[h.pi], g.rho[h.rho])


def inverse(g: Element) -> Element:
    return Element(np.argsort(g.pi), np.argsort(g.rho))


def random_element(rng: np.random.Generator, k: int, d: int, col_colours: np.ndarray | None = None) -> Element:
    """A uniformly random element of ``G_V`` (columns permuted only within colour classes)."""
    rho = np.arange(d)
    if col_colours is None:
        rho = rng.permutation(d)
    else:
        for c in np.unique(col_colours):
            idx = np.flatnonzero(col_colours == c)
            rho[idx] = rng.permutation(idx)
    return Element(rng.permutation(k), rho)


def target_column_colours(V: np.ndarray | None, d: int, tol: float = 1e-9) -> np.ndarray:
    """Canonical colours of the columns of ``V`` (equal sorted columns share a colour); zeros if None."""
    if V is None:
        return np.zeros(d, dtype=np.int64)
    V = np.asarray(V, dtype=np.float64)
    cols = np.sort(np.round(V / tol).astype(np.int64), axis=0).T
    return np.unique(cols, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Quantisation and colour refinement
# --------------------------------------------------------------------------------------------------
def quantise(values: np.ndarray, tol: float) -> np.ndarray:
    """Integer classes of ``values`` (any shape): sorted values split wherever a gap exceeds ``tol``."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(flat, kind="stable")
    breaks = np.concatenate([[0], (np.diff(flat[order]) > tol).astype(np.int64)])
    classes = np.empty_like(order)
    classes[order] = np.cumsum(breaks)
    return classes.reshape(np.shape(values))


def _relabel(old: list[np.ndarray], sig: list[np.ndarray]) -> list[np.ndarray]:
    """New canonical colours: lexicographic rank of (old colour, signature) over all matrices."""
    rows = np.concatenate([np.concatenate([o[:, None], s], axis=1) for o, s in zip(old, sig)])
    inv = np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1)
    out, start = [], 0
    for o in old:
        out.append(inv[start:start + len(o)])
        start += len(o)
    return out


def refine(Qs: list[np.ndarray], rows: list[np.ndarray], cols: list[np.ndarray]
           ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Joint colour refinement of bipartite graphs with edge classes ``Qs[j]`` (k, d) (int).

    Colours are canonical (they depend only on isomorphism-invariant signatures), so equal colours in
    different matrices are comparable. Returns stable row and column colourings.
    """
    def count(cs: list[np.ndarray]) -> int:
        return len(np.unique(np.concatenate(cs)))

    n_r, n_c = count(rows), count(cols)
    while True:
        m = int(max(int(np.max(c)) for c in cols)) + 1
        rows = _relabel(rows, [np.sort(Q * m + c[None, :], axis=1) for Q, c in zip(Qs, cols)])
        m = int(max(int(np.max(r)) for r in rows)) + 1
        cols = _relabel(cols, [np.sort(Q.T * m + r[None, :], axis=1) for Q, r in zip(Qs, rows)])
        nr, nc = count(rows), count(cols)
        if (nr, nc) == (n_r, n_c):
            return rows, cols
        n_r, n_c = nr, nc


def _cells(colours: np.ndarray) -> list[np.ndarray]:
    """Members of each colour class, ordered by colour."""
    return [np.flatnonzero(colours == c) for c in np.unique(colours)]


# --------------------------------------------------------------------------------------------------
# Isotropy
# --------------------------------------------------------------------------------------------------
@dataclass
class Isotropy:
    """The stabiliser of a point in ``G_V``.

    Attributes:
      order: the group's order.
      name: papers' notation where it fits (``ΔS6``, ``Δ(S5×S1)``, ``Δ(S4×S1×S1)×S2``), else
        ``"order N, neuron orbits [...]"``; ``"1"`` for the trivial group.
      neuron_orbits: orbit sizes on neurons (rows), descending.
      coordinate_orbits: orbit sizes on coordinates (columns), descending.
      generators: group elements generating it.
      row_orbits, col_orbits: the orbits themselves (lists of index arrays).
    """

    order: int
    name: str
    neuron_orbits: list[int]
    coordinate_orbits: list[int]
    generators: list[Element] = field(repr=False)
    row_orbits: list[list[int]] = field(repr=False)
    col_orbits: list[list[int]] = field(repr=False)


def _column_match(Q: np.ndarray, Qm: np.ndarray, colours: np.ndarray) -> np.ndarray | None:
    """ρ with ``Qm[:, a] == Q[:, ρ[a]]`` for every column a (colour preserving), or None."""
    keys = np.concatenate([colours[None, :], Q], axis=0).T
    keys_m = np.concatenate([colours[None, :], Qm], axis=0).T
    o = np.lexsort(keys.T[::-1])
    om = np.lexsort(keys_m.T[::-1])
    if not np.array_equal(keys[o], keys_m[om]):
        return None
    rho = np.empty_like(o)
    rho[om] = o  # column om[t] of Qm is column o[t] of Q
    return rho


def _row_member(Q: np.ndarray, pi: Perm, colours: np.ndarray) -> Element | None:
    """The element (π, ρ) of the stabiliser over row permutation π (g·W = W), or None."""
    moved = Q[np.argsort(pi)]  # rows moved by π: (P_π Q)[π[i]] = Q[i]
    # g·W = W  ⇔  (P_π W)[:, b] = W[:, ρ[b]] for every column b, which is what the match returns
    rho = _column_match(Q, moved, colours)
    return None if rho is None else Element(pi, rho)


def _union_orbits(n: int, perms: list[Perm]) -> list[list[int]]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in perms:
        for i, j in enumerate(p):
            a, b = find(i), find(int(j))
            if a != b:
                parent[a] = b
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def _enumerate_rows(Q: np.ndarray, cells: list[np.ndarray], colours: np.ndarray, limit: int) -> list[Element]:
    """All stabiliser elements (one per row permutation), by backtracking with partial column checks."""
    k = Q.shape[0]
    cell_of = np.empty(k, dtype=np.int64)
    for c, members in enumerate(cells):
        cell_of[members] = c
    found: list[Element] = []

    def partial_ok(dom: list[int], img: list[int]) -> bool:
        a = np.concatenate([colours[None, :], Q[dom]], axis=0).T
        b = np.concatenate([colours[None, :], Q[img]], axis=0).T
        return np.array_equal(a[np.lexsort(a.T[::-1])], b[np.lexsort(b.T[::-1])])

    def extend(img: list[int], used: set[int]) -> None:
        if len(found) > limit:
            raise RuntimeError(f"isotropy group larger than {limit} without product structure")
        i = len(img)
        if i == k:
            g = _row_member(Q, np.array(img), colours)
            if g is not None:
                found.append(g)
            return
        for j in cells[cell_of[i]]:
            if j not in used and partial_ok(list(range(i + 1)), [*img, int(j)]):
                extend([*img, int(j)], used | {int(j)})

    extend([], set())
    return found


def _closure(gens: list[Perm], n: int) -> set[tuple[int, ...]]:
    """The set of permutations generated by ``gens`` (small groups only)."""
    seen = {tuple(range(n))}
    frontier = [np.arange(n)]
    while frontier:
        new = []
        for p in frontier:
            for g in gens:
                q = g[p]
                t = tuple(q.tolist())
                if t not in seen:
                    seen.add(t)
                    new.append(q)
        frontier = new
    return seen


def _product_name(sizes: list[int], diagonal: bool, kernel: list[int]) -> str:
    sizes = sorted(sizes, reverse=True)
    if all(s == 1 for s in sizes):  # only identical columns can be swapped: the kernel alone
        return "×".join(f"S{s}" for s in sorted(kernel, reverse=True) if s > 1) or "1"
    if len(sizes) == 1:
        core = f"S{sizes[0]}"
    else:
        core = "(" + "×".join(f"S{s}" for s in sizes) + ")"
    name = ("Δ" if diagonal else "") + core
    extra = [s for s in sorted(kernel, reverse=True) if s > 1]
    return name + "".join(f"×S{s}" for s in extra)


def isotropy(W: np.ndarray, V: np.ndarray | None = None, *, tol: float = 1e-6, limit: int = 100_000) -> Isotropy:
    """The isotropy group of ``W`` (k, d) in ``G_V`` (default ``V = I``-type: every column permutation).

    Args:
      W: the point, any float dtype (compared in float64).
      V: the target; only its column structure matters (see module docstring). ``None`` means no
        constraint on ρ, which is ``G_V`` for ``V = I`` (k = d).
      tol: entries closer than this are equal.
      limit: the most elements the non-product fallback enumerates.
    """
    W = np.asarray(W, dtype=np.float64)
    k, d = W.shape
    colours = target_column_colours(V, d)
    Q = quantise(W, tol)
    (rows,), _ = refine([Q], [np.zeros(k, dtype=np.int64)], [colours])
    cells = _cells(rows)
    # kernel: permutations of identical columns (same colour, same entries)
    keys = np.concatenate([colours[None, :], Q], axis=0).T
    col_classes = np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)
    kernel_cells = [c for c in _cells(col_classes) if len(c) > 1]
    kernel_order = math.prod(math.factorial(len(c)) for c in kernel_cells)
    kernel_gens = []
    for c in kernel_cells:
        for j in c[1:]:
            rho = np.arange(d)
            rho[[c[0], j]] = [j, c[0]]
            kernel_gens.append(Element(np.arange(k), rho))

    row_gens: list[Element] = []
    product = True
    for cell in cells:
        for j in cell[1:]:
            pi = np.arange(k)
            pi[[cell[0], j]] = [j, cell[0]]
            g = _row_member(Q, pi, colours)
            if g is None:
                product = False
                break
            row_gens.append(g)
        if not product:
            break

    if product:
        row_order = math.prod(math.factorial(len(c)) for c in cells)
        diagonal = all(not np.array_equal(g.rho, np.arange(d)) for g in row_gens)
        sizes = [len(c) for c in cells]
        nontrivial = row_order > 1 or kernel_order > 1
        name = _product_name(sizes, diagonal, [len(c) for c in kernel_cells]) if nontrivial else "1"
    else:
        elements = _enumerate_rows(Q, cells, colours, limit)
        row_gens, generated = [], {tuple(range(k))}
        for g in elements:  # greedy generating set: add what the current generators miss
            if tuple(g.pi.tolist()) not in generated:
                row_gens.append(g)
                generated = _closure([h.pi for h in row_gens], k)
        row_order = len(elements)
        name = ""
    gens = row_gens + kernel_gens
    row_orbits = _union_orbits(k, [g.pi for g in gens])
    col_orbits = _union_orbits(d, [g.rho for g in gens])
    order = row_order * kernel_order
    if not name:
        name = "1" if order == 1 else f"order {order}, neuron orbits {[len(o) for o in row_orbits]}"
    return Isotropy(order, name, [len(o) for o in row_orbits], [len(o) for o in col_orbits], gens,
                    row_orbits, col_orbits)


# --------------------------------------------------------------------------------------------------
# Equivalence of two points
# --------------------------------------------------------------------------------------------------
def find_element(W1: np.ndarray, W2: np.ndarray, V: np.ndarray | None = None, *, tol: float = 1e-6
                 ) -> Element | None:
    """An element ``g ∈ G_V`` with ``g·W1 ≈ W2`` (max-abs difference ≤ tol), or None if none exists."""
    W1 = np.asarray(W1, dtype=np.float64)
    W2 = np.asarray(W2, dtype=np.float64)
    if W1.shape != W2.shape:
        return None
    k, d = W1.shape
    colours = target_column_colours(V, d)
    Q = quantise(np.stack([W1, W2]), tol)
    Q1, Q2 = Q[0], Q[1]

    def search(r1: np.ndarray, c1: np.ndarray, r2: np.ndarray, c2: np.ndarray) -> Element | None:
        (r1, r2), (c1, c2) = refine([Q1, Q2], [r1, r2], [c1, c2])
        if not (np.array_equal(np.sort(r1), np.sort(r2)) and np.array_equal(np.sort(c1), np.sort(c2))):
            return None
        if len(np.unique(r1)) == k and len(np.unique(c1)) == d:
            pi = np.empty(k, dtype=np.int64)
            pi[np.argsort(r1)] = np.argsort(r2)
            rho = np.empty(d, dtype=np.int64)
            rho[np.argsort(c1)] = np.argsort(c2)
            g = Element(pi, rho)
            return g if np.max(np.abs(apply(g, W1) - W2)) <= tol else None
        rows_open = len(np.unique(r1)) < k
        a1, a2 = (r1, r2) if rows_open else (c1, c2)
        sizes = {c: int(np.sum(a1 == c)) for c in np.unique(a1)}
        target = min((c for c, n in sizes.items() if n > 1), key=lambda c: (sizes[c], c))
        x = int(np.flatnonzero(a1 == target)[0])
        new = int(max(np.max(a1), np.max(a2))) + 1
        for y in np.flatnonzero(a2 == target):
            b1, b2 = a1.copy(), a2.copy()
            b1[x], b2[y] = new, new
            g = search(b1, c1, b2, c2) if rows_open else search(r1, b1, r2, b2)
            if g is not None:
                return g
        return None

    zr = np.zeros(k, dtype=np.int64)
    return search(zr, colours, zr.copy(), colours.copy())


def equivalent(W1: np.ndarray, W2: np.ndarray, V: np.ndarray | None = None, *, tol: float = 1e-6) -> bool:
    """Whether ``W2 = g·W1`` for some ``g ∈ G_V`` within ``tol``."""
    return find_element(W1, W2, V, tol=tol) is not None
