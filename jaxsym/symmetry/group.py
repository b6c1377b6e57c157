"""The one symmetry core: permutation groups of layered networks, isotropy groups and equivalence of points.

**Group.** A network's weights ``W_1 (n_1 × n_0), …, W_L (n_L × n_{L−1})`` and optional output weights
``a (n_L)`` form a layered weighted graph on vertex layers ``0`` (inputs, the coordinates) … ``L`` (the last
hidden layer). ``G = S_{n_0} × S_{n_1} × … × S_{n_L}`` acts by ``g = (p_0, …, p_L)``:

    (g·W)_l = P_l W_l P_{l−1}ᵀ,   g·a = P_L a,

(entry ``(i, j)`` of ``W_l`` moves to ``(p_l[i], p_{l−1}[j])``), with input permutations ``p_0`` restricted to
preserve ``input_colours`` (the coordinates the input law and the target treat alike).

**The two-layer student is the first instance**: ``L = 1``, ``W ∈ R^{k×d}``, ``g = (ρ, π) ∈ S_d × S_k`` acts
by ``g·W = P_π W P_ρᵀ``. The loss is invariant under the subgroup ``G_V`` of elements that map the target
``V`` to a row permutation of itself: all of ``G`` for ``V = I`` (k = d). ``G_V`` is encoded by *column
colours* (:func:`target_column_colours`: columns of ``V`` equal as multisets share a colour; ``ρ`` preserves
colours): exact for the identity targets and for targets with pairwise distinct columns, a necessary condition
only for other ``V``. :func:`isotropy`, :func:`find_element` and :func:`apply` take one matrix ``W``.

Everything is exact up to ``tol`` by **individualisation–refinement** (graph-isomorphism programs in miniature):

1. entries of each ``W_l`` (and of ``a``) are quantised into value classes (closer than ``tol`` → one class);
2. colour refinement (1-dim Weisfeiler–Leman): a vertex's new colour is its old colour plus the sorted
   multisets of (edge class, neighbour colour) below and above, repeated until stable; colours are canonical
   (ranks of isomorphism-invariant signatures), so they are comparable across networks, and every element of
   the group preserves them;
3. a search individualises one vertex of the first non-trivial cell at a time (each image in turn in the other
   network), refines, and at a discrete colouring checks the unique candidate permutation entrywise.

**Isotropy** ``G_W = {g : g·W = W}``:

- *fast path* (one hidden layer, no output weights: the papers' student). ``G_W`` maps onto a group of row
  permutations ``R ⊆ Π S_cell`` (cells of the stable row colouring) with kernel ``K`` = permutations of
  identical columns, ``|G_W| = |R|·|K|``. A row permutation π lies in ``R`` iff the columns of ``P_π W`` are a
  colour-preserving permutation of those of ``W`` (a sort). If the transpositions ``(c₀ c_j)`` of every cell
  lie in ``R``, then ``R = Π S_cell`` exactly (they generate it): the product-type groups of the papers in
  O(k) membership tests, e.g. ``Δ(S_{k−1}×S_1)`` at k = 100 in milliseconds.
- *otherwise* the orbit–stabiliser chain: the orbit of the first vertex ``x`` of a non-trivial cell under the
  stabiliser of the earlier base points is found by searching an element ``x ↦ y`` for every ``y`` of the
  cell not already reached; ``|G_W| = Π |orbit|`` along the chain. A search that exceeds its node ``limit``
  (only very irregular near-symmetric points do) leaves ``exact = False``: the group found is a subgroup.

The elements found generate ``G_W``; their union-find orbits are the exact orbits on each layer. Names follow
the papers (:mod:`jaxsym.symmetry.naming`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from jaxsym.symmetry.naming import product_name

Perm = np.ndarray  # int array, a permutation of range(n)
Layers = list[np.ndarray]  # [W_1, …, W_L]
Colours = list[np.ndarray]  # one int array per vertex layer 0 … L


# --------------------------------------------------------------------------------------------------
# Group elements
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Element:
    """``g = (p_0, …, p_L)``: one permutation per vertex layer, inputs first.

    For the two-layer student, ``rho = p_0`` permutes coordinates (columns) and ``pi = p_1`` neurons (rows);
    ``g(W)`` applies it to one ``(k, d)`` matrix.
    """

    perms: tuple[Perm, ...]

    @classmethod
    def of(cls, pi: Perm, rho: Perm) -> Element:
        """The two-layer element ``(π, ρ) ∈ S_k × S_d``."""
        return cls((np.asarray(rho), np.asarray(pi)))

    @property
    def rho(self) -> Perm:
        return self.perms[0]

    @property
    def pi(self) -> Perm:
        return self.perms[1]

    def __call__(self, W: np.ndarray) -> np.ndarray:
        return apply(self, W)

    def __repr__(self) -> str:
        return f"Element({[p.tolist() for p in self.perms]})"


def apply_net(g: Element, layers: Layers, a: np.ndarray | None = None) -> tuple[Layers, np.ndarray | None]:
    """``g·(W, a)``: ``out_l[p_l[i], p_{l−1}[j]] = W_l[i, j]``, ``out_a[p_L[i]] = a[i]``."""
    inv = [np.argsort(p) for p in g.perms]
    out = [np.asarray(W)[np.ix_(inv[l + 1], inv[l])] for l, W in enumerate(layers)]
    return out, None if a is None else np.asarray(a)[inv[-1]]


def apply(g: Element, W: np.ndarray) -> np.ndarray:
    """``P_π W P_ρᵀ`` of one matrix: ``out[π[i], ρ[a]] = W[i, a]``."""
    return apply_net(g, [W])[0][0]


def identity(k: int, d: int) -> Element:
    return Element.of(np.arange(k), np.arange(d))


def compose(g: Element, h: Element) -> Element:
    """``g ∘ h`` (apply h first): ``apply(compose(g, h), W) == apply(g, apply(h, W))``."""
    return Element(tuple(p[q] for p, q in zip(g.perms, h.perms)))


def inverse(g: Element) -> Element:
    return Element(tuple(np.argsort(p) for p in g.perms))


def random_element(rng: np.random.Generator, k: int, d: int, col_colours: np.ndarray | None = None) -> Element:
    """A uniformly random element of ``G_V`` (columns permuted only within colour classes)."""
    rho = np.arange(d)
    if col_colours is None:
        rho = rng.permutation(d)
    else:
        for c in np.unique(col_colours):
            idx = np.flatnonzero(col_colours == c)
            rho[idx] = rng.permutation(idx)
    return Element.of(rng.permutation(k), rho)


def target_column_colours(V: np.ndarray | None, d: int, tol: float = 1e-9) -> np.ndarray:
    """Canonical colours of the columns of ``V`` (equal sorted columns share a colour); zeros if None."""
    if V is None:
        return np.zeros(d, dtype=np.int64)
    V = np.asarray(V, dtype=np.float64)
    cols = np.sort(np.round(V / tol).astype(np.int64), axis=0).T
    return np.unique(cols, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


class UnionFind:
    """Disjoint sets over ``0 … n−1``; the root of a set is its smallest member."""

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


def orbits_of(n: int, perms: list[Perm]) -> list[list[int]]:
    """Orbits on ``0 … n−1`` of the group generated by ``perms``, largest first (ties: smallest member)."""
    uf = UnionFind(n)
    for p in perms:
        for i, j in enumerate(p):
            uf.union(i, int(j))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(uf.find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


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


@dataclass
class _Problem:
    """One or more networks quantised jointly, ready for refinement."""

    Q: list[Layers]        # per net: quantised W_l (int)
    init: list[Colours]    # per net: initial colours (the layer index is part of the colour)


def _prepare(nets: list[tuple[Layers, np.ndarray | None]], tol: float,
             input_colours: np.ndarray | None, constant: bool = False) -> _Problem:
    """Quantised edges and initial colours; ``constant``: the last vertex of every layer is the constant unit
    of homogeneous coordinates (biases are its edges), coloured apart so that no element moves it."""
    L = len(nets[0][0])
    Q: list[Layers] = [[] for _ in nets]
    for l in range(L):
        stacked = quantise(np.stack([np.asarray(n[0][l], np.float64) for n in nets]), tol)
        for i in range(len(nets)):
            Q[i].append(stacked[i])
    n0 = nets[0][0][0].shape[1]
    c0 = np.zeros(n0, np.int64) if input_colours is None else np.asarray(input_colours, np.int64)
    if constant and input_colours is not None and len(c0) == n0 - 1:  # colours of the inputs alone
        c0 = np.append(c0, 0)
    a_all = [n[1] for n in nets]
    qa = quantise(np.stack(a_all), tol) if a_all[0] is not None else None
    init = []
    for i, (layers, _) in enumerate(nets):
        cols = [c0.copy()] + [np.zeros(W.shape[0], np.int64) for W in layers]
        if qa is not None:
            cols[-1] = qa[i].astype(np.int64)
        if constant:  # one colour above every other of its layer, the same in every net
            for l, c in enumerate(cols):
                c[-1] = (int(qa.max()) if qa is not None and l == L else int(c0.max()) if l == 0 else 0) + 1
        # vertices of different layers never share a colour
        init.append([c * (L + 1) + l for l, c in enumerate(cols)])
    return _Problem(Q, init)


def _n_colours(cols: list[Colours]) -> int:
    return len(np.unique(np.concatenate([c for net in cols for c in net])))


def refine(Q: list[Layers], cols: list[Colours]) -> list[Colours]:
    """Joint colour refinement of several layered networks ``Q[net][l]`` (int edge classes).

    A vertex's signature is (its colour, the sorted (edge class, colour) pairs of its neighbours below, those
    above); new colours are the ranks of the signatures over all networks, so equal colours in different
    networks are comparable. Returns the stable colourings (same structure as ``cols``).
    """
    L = len(Q[0])
    count = _n_colours(cols)
    while True:
        base = int(max(int(c.max()) for net in cols for c in net if c.size)) + 1
        keys, inverse_, offsets = [], [], [0]
        for l in range(L + 1):
            parts = []
            for q, c in zip(Q, cols):
                sig = [c[l][:, None]]
                if l > 0:  # pairs (edge class, colour) of the neighbours below, sorted: encoded q·base + c
                    sig.append(np.sort(q[l - 1] * base + c[l - 1][None, :], axis=1))
                if l < L:
                    sig.append(np.sort(q[l].T * base + c[l + 1][None, :], axis=1))
                parts.append(np.concatenate(sig, axis=1))
            uniq, inv = np.unique(np.concatenate(parts), axis=0, return_inverse=True)
            keys.append(uniq[:, 0])
            inverse_.append(inv.reshape(-1))
            offsets.append(offsets[-1] + len(uniq))
        # global rank: by old colour (which separates layers), then by the layer's lexicographic rank
        old = np.concatenate(keys)
        local = np.concatenate([np.arange(len(k)) for k in keys])
        rank = np.empty(len(old), np.int64)
        rank[np.lexsort((local, old))] = np.arange(len(old))
        new: list[Colours] = [[] for _ in Q]
        for l in range(L + 1):
            flat = rank[offsets[l] + inverse_[l]]
            start = 0
            for i, c in enumerate(cols):
                n = len(c[l])
                new[i].append(flat[start:start + n])
                start += n
        cols = new
        n_new = _n_colours(cols)
        if n_new == count:
            return cols
        count = n_new


def _individualise(cols: Colours, layer: int, v: int) -> Colours:
    out = [c.copy() for c in cols]
    out[layer][v] = max(int(c.max()) for c in cols if c.size) + 1
    return out


def _first_cell(cols: Colours) -> tuple[int, np.ndarray] | None:
    """The first (by layer, then colour) colour class with more than one vertex."""
    for l, c in enumerate(cols):
        values, counts = np.unique(c, return_counts=True)
        big = values[counts > 1]
        if big.size:
            return l, np.flatnonzero(c == big[0])
    return None


# --------------------------------------------------------------------------------------------------
# Equivalence
# --------------------------------------------------------------------------------------------------
class _BudgetExceededError(Exception):
    pass


def _distance(A: Layers, a: np.ndarray | None, B: Layers, b: np.ndarray | None) -> float:
    dist = max(float(np.max(np.abs(X - Y))) for X, Y in zip(A, B))
    return dist if a is None else max(dist, float(np.max(np.abs(a - b))))


class _Search:
    """Individualisation–refinement search for an element mapping net A onto net B."""

    def __init__(self, Q: list[Layers], A: tuple[Layers, np.ndarray | None], B: tuple[Layers, np.ndarray | None],
                 tol: float, limit: int) -> None:
        self.Q, self.A, self.B, self.tol, self.budget = Q, A, B, tol, limit

    def run(self, ca: Colours, cb: Colours) -> Element | None:
        self.budget -= 1
        if self.budget < 0:
            raise _BudgetExceededError
        ca, cb = refine(self.Q, [ca, cb])
        for x, y in zip(ca, cb):
            if not np.array_equal(np.sort(x), np.sort(y)):
                return None
        cell = _first_cell(ca)
        if cell is None:
            perms = []
            for x, y in zip(ca, cb):
                where = {int(c): i for i, c in enumerate(y)}
                perms.append(np.array([where[int(c)] for c in x]))
            g = Element(tuple(perms))
            moved, a = apply_net(g, *self.A)
            return g if _distance(moved, a, *self.B) <= self.tol else None
        layer, members = cell
        v = int(members[0])
        for w in np.flatnonzero(cb[layer] == ca[layer][v]):
            g = self.run(_individualise(ca, layer, v), _individualise(cb, layer, int(w)))
            if g is not None:
                return g
        return None


def invariants_close(A: Layers, a: np.ndarray | None, B: Layers, b: np.ndarray | None, tol: float) -> bool:
    """A necessary condition for equivalence: each layer's sorted entries agree within ``tol``."""
    pairs = list(zip(A, B)) + ([] if a is None else [(a, b)])
    return all(float(np.max(np.abs(np.sort(X, axis=None) - np.sort(Y, axis=None)))) <= tol for X, Y in pairs)


def find_net_element(A: Layers, a: np.ndarray | None, B: Layers, b: np.ndarray | None, *, tol: float = 1e-6,
                     input_colours: np.ndarray | None = None, limit: int = 20_000, constant: bool = False
                     ) -> Element | None:
    """``g`` with ``g·(A, a) = (B, b)`` within ``tol`` entrywise, or None (also when the search exceeds ``limit``
    nodes, which only very irregular near-symmetric points reach). ``constant``: networks in homogeneous
    coordinates (:func:`_prepare`), whose constant units stay put."""
    A = [np.asarray(W, np.float64) for W in A]
    B = [np.asarray(W, np.float64) for W in B]
    if [W.shape for W in A] != [W.shape for W in B]:
        return None
    a = None if a is None else np.asarray(a, np.float64)
    b = None if b is None else np.asarray(b, np.float64)
    if not invariants_close(A, a, B, b, tol):
        return None
    prob = _prepare([(A, a), (B, b)], tol, input_colours, constant)
    try:
        return _Search(prob.Q, (A, a), (B, b), tol, limit).run(*prob.init)
    except _BudgetExceededError:
        return None


def as_point(W: object, name: str = "W") -> np.ndarray:
    """``W`` as a float64 (k, d) matrix, or a ``ValueError`` that says what is wrong with it."""
    A = np.asarray(W)
    if np.iscomplexobj(A):
        raise ValueError(f"{name} must be real, got a complex array")
    if A.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a numeric (k, d) matrix, got dtype {A.dtype}")
    if A.ndim != 2:
        raise ValueError(f"{name} must be one (k, d) matrix, got shape {A.shape} (use a loop or jax.vmap for batches)")
    A = A.astype(np.float64)
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} has non-finite entries (NaN or inf): no isotropy or equivalence is defined")
    return A


def find_element(W1: np.ndarray, W2: np.ndarray, V: np.ndarray | None = None, *, tol: float = 1e-6
                 ) -> Element | None:
    """An element ``g ∈ G_V`` with ``g·W1 ≈ W2`` (max-abs difference ≤ tol), or None if none exists."""
    W1, W2 = as_point(W1, "W1"), as_point(W2, "W2")
    return find_net_element([W1], None, [W2], None, tol=tol, input_colours=target_column_colours(V, W1.shape[1]))


def equivalent(W1: np.ndarray, W2: np.ndarray, V: np.ndarray | None = None, *, tol: float = 1e-6) -> bool:
    """Whether ``W2 = g·W1`` for some ``g ∈ G_V`` within ``tol``."""
    return find_element(W1, W2, V, tol=tol) is not None


# --------------------------------------------------------------------------------------------------
# Isotropy
# --------------------------------------------------------------------------------------------------
@dataclass
class Isotropy:
    """The stabiliser of a point.

    Attributes:
      order: the group's order (exact unless ``exact`` is False).
      name: papers' notation where it fits (``ΔS6``, ``Δ(S5×S1)``, ``Δ(S4×S1×S1)×S2``), else
        ``"order N, neuron orbits [...]"``; ``"1"`` for the trivial group (:mod:`jaxsym.symmetry.naming`).
      neuron_orbits: orbit sizes on the first hidden layer (the neurons), descending.
      coordinate_orbits: orbit sizes on the inputs (the coordinates), descending.
      layer_orbits: orbit sizes on every vertex layer, inputs first.
      generators: elements generating the group.
      orbits: the orbits themselves per vertex layer (lists of indices), inputs first.
      exact: False when a search hit its node limit (the group found is then a subgroup).
    """

    order: int
    name: str
    neuron_orbits: list[int]
    coordinate_orbits: list[int]
    layer_orbits: list[list[int]]
    generators: list[Element] = field(repr=False)
    orbits: list[list[list[int]]] = field(repr=False)
    exact: bool = True

    @property
    def row_orbits(self) -> list[list[int]]:
        """Orbits on neurons (two-layer: rows of W)."""
        return self.orbits[1]

    @property
    def col_orbits(self) -> list[list[int]]:
        """Orbits on coordinates (columns of W)."""
        return self.orbits[0]


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
    rho = _column_match(Q, moved, colours)
    return None if rho is None else Element.of(pi, rho)


def _product_generators(W: np.ndarray, Q: np.ndarray, cells: list[np.ndarray], colours: np.ndarray, tol: float
                        ) -> list[Element] | None:
    """Fast path: the stabiliser elements over the transpositions (c₀ c_j) of every row cell, or None when one
    of them is not in the group (the row group is then not the full product of the cells). Quantised classes
    can chain values further apart than ``tol``, so each element is also checked entrywise, as the search
    checks its candidates."""
    k = Q.shape[0]
    gens = []
    for cell in cells:
        for j in cell[1:]:
            pi = np.arange(k)
            pi[[cell[0], j]] = [j, cell[0]]
            g = _row_member(Q, pi, colours)
            if g is None or np.max(np.abs(apply(g, W) - W)) > tol:
                return None
            gens.append(g)
    return gens


def _orbit_closure(x: int, layer: int, gens: list[Element]) -> set[int]:
    seen, todo = {x}, [x]
    while todo:
        y = todo.pop()
        for g in gens:
            z = int(g.perms[layer][y])
            if z not in seen:
                seen.add(z)
                todo.append(z)
    return seen


def _chain(prob: _Problem, net: tuple[Layers, np.ndarray | None], tol: float, limit: int
           ) -> tuple[list[Element], int, bool]:
    """Generators and order of the stabiliser by the orbit–stabiliser chain (module docstring)."""
    search = _Search(prob.Q * 2, net, net, tol, limit)
    cols = refine(prob.Q, prob.init)[0]
    gens: list[Element] = []
    order, exact = 1, True
    while (cell := _first_cell(cols)) is not None:
        layer, members = cell
        x = int(members[0])
        level: list[Element] = []
        orbit = {x}
        for y in members[1:]:
            if int(y) in orbit:
                continue
            try:
                g = search.run(_individualise(cols, layer, x), _individualise(cols, layer, int(y)))
            except _BudgetExceededError:
                exact = False
                break
            if g is not None:
                level.append(g)
                orbit = _orbit_closure(x, layer, level)
        gens += level
        order *= len(orbit)
        cols = refine(prob.Q, [_individualise(cols, layer, x)])[0]
        if not exact:
            break
    return gens, order, exact


def net_isotropy(layers: Layers, a: np.ndarray | None = None, *, tol: float = 1e-6,
                 input_colours: np.ndarray | None = None, limit: int = 20_000, constant: bool = False) -> Isotropy:
    """The isotropy group of ``(W_1, …, W_L, a)`` (``a = None``: output weights all equal, e.g. fixed 𝟙).

    ``constant``: a network in homogeneous coordinates, ``W_l = [[K_l, b_l], [0, 1]]`` with the biases ``b_l``
    as edges of a constant unit, the last vertex of every layer (``a`` ends with the output bias). The constant
    units are fixed by every element and left out of the orbits and the name, so the isotropy is that of the
    network's hidden units and inputs."""
    A = [np.asarray(W, np.float64) for W in layers]
    a = None if a is None else np.asarray(a, np.float64)
    prob = _prepare([(A, a)], tol, input_colours, constant)
    Q0, c0 = prob.Q[0][0], prob.init[0][0]
    sizes_of = [len(c) for c in prob.init[0]]
    # kernel: permutations of inputs with identical first-layer columns (they fix every hidden unit)
    keys = np.concatenate([c0[None, :], Q0], axis=0).T
    col_classes = np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)
    kernel_cells = [np.flatnonzero(col_classes == c) for c in np.unique(col_classes)]
    kernel_cells = [c for c in kernel_cells if len(c) > 1]
    kernel = [len(c) for c in kernel_cells]
    kernel_order = math.prod(math.factorial(c) for c in kernel)

    gens: list[Element] | None = None
    if len(A) == 1 and a is None and not constant:  # the two-layer student: product-type fast path
        rows = refine(prob.Q, prob.init)[0][1]
        cells = [np.flatnonzero(rows == c) for c in np.unique(rows)]
        gens = _product_generators(A[0], Q0, cells, c0, tol)
    if gens is not None:
        k, d = sizes_of[1], sizes_of[0]
        kernel_gens = []
        for c in kernel_cells:
            for j in c[1:]:
                rho = np.arange(d)
                rho[[c[0], j]] = [j, c[0]]
                kernel_gens.append(Element.of(np.arange(k), rho))
        row_order = math.prod(math.factorial(len(c)) for c in cells)
        order = row_order * kernel_order
        diagonal = all(not np.array_equal(g.rho, np.arange(d)) for g in gens)
        name = product_name([len(c) for c in cells], diagonal, kernel) if order > 1 else "1"
        gens = gens + kernel_gens
        exact = True
    else:
        gens, order, exact = _chain(prob, (A, a), tol, limit)
        name = ""
    orbits = [orbits_of(n, [g.perms[l] for g in gens]) for l, n in enumerate(sizes_of)]
    if constant:  # the constant units: fixed, not units of the network
        orbits = [[o for o in layer if o != [n - 1]] for layer, n in zip(orbits, sizes_of)]
    sizes = [[len(o) for o in layer] for layer in orbits]
    if not name:
        neuron = sizes[1]
        if order == 1:
            name = "1"
        elif exact and order == math.prod(math.factorial(s) for s in neuron) * kernel_order:
            name = product_name(neuron, True, kernel)
        else:
            name = f"order {order}, neuron orbits {neuron}"
    return Isotropy(order, name, sizes[1], sizes[0], sizes, gens, orbits, exact)


def isotropy(W: np.ndarray, V: np.ndarray | None = None, *, tol: float = 1e-6, limit: int = 20_000) -> Isotropy:
    """The isotropy group of ``W`` (k, d) in ``G_V`` (default ``V = I``-type: every column permutation).

    Args:
      W: the point, any float dtype (compared in float64).
      V: the target; only its column structure matters (module docstring). ``None`` means no constraint on
        ρ, which is ``G_V`` for ``V = I`` (k = d).
      tol: entries closer than this are equal.
      limit: the most search nodes of the non-product case (``exact`` is False beyond it).
    """
    W = as_point(W)
    return net_isotropy([W], None, tol=tol, input_colours=target_column_colours(V, W.shape[1]), limit=limit)
