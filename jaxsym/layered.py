"""Permutation symmetry of layered networks: isotropy groups, orbits per layer and equivalence.

A network's weights ``W_1 (n_1 × n_0), …, W_L (n_L × n_{L−1})`` and output weights ``a (n_L)`` form a layered
weighted graph on vertex layers ``0`` (inputs) … ``L`` (last hidden layer). The group
``G = S_{n_0} × S_{n_1} × … × S_{n_L}`` acts by ``g = (p_0, …, p_L)``:

    (g·W)_l = P_l W_l P_{l−1}ᵀ,   g·a = P_L a,

(entry ``(i, j)`` of ``W_l`` moves to ``(p_l[i], p_{l−1}[j])``), with input permutations ``p_0`` restricted to
preserve ``input_colours`` (the coordinates the input law and the teacher treat alike). ``L = 1`` is the
``S_k × S_d`` action of :mod:`jaxsym.symmetry` with an extra, optional output vector.

Everything is exact up to ``tol`` by **individualisation–refinement** (the method of graph-isomorphism
programs, in miniature):

1. entries of each ``W_l`` (and of ``a``) are quantised into value classes (closer than ``tol`` → same class);
2. colour refinement: a vertex's new colour is its old colour plus the sorted multisets of (edge class,
   neighbour colour) to the layers below and above; repeated until stable. Every isomorphism preserves it;
3. a search individualises one vertex of the first non-trivial cell at a time (tries each image in the other
   net), refines, and at a discrete colouring checks the unique candidate permutation entrywise.

**Isotropy** ``G_W = {g : g·W = W}`` by the orbit–stabiliser chain: the orbit of the first vertex ``x`` of a
non-trivial cell under the stabiliser of the earlier base points is found by searching an element mapping
``x ↦ y`` for every ``y`` of the cell not already reached; ``|G_W| = Π |orbit|`` over the chain. The elements
found generate ``G_W``; their union-find orbits are the exact orbits on each layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from jaxsym.symmetry import _product_name, _union_orbits, quantise

Layers = list[np.ndarray]  # [W_1, …, W_L]
Colours = list[np.ndarray]  # one int array per vertex layer 0 … L


@dataclass(frozen=True)
class Element:
    """``g = (p_0, …, p_L)``: one permutation per vertex layer (inputs first)."""

    perms: tuple[np.ndarray, ...]


def apply(g: Element, layers: Layers, a: np.ndarray | None = None) -> tuple[Layers, np.ndarray | None]:
    """``g·(W, a)``: ``out_l[p_l[i], p_{l−1}[j]] = W_l[i, j]``, ``out_a[p_L[i]] = a[i]``."""
    inv = [np.argsort(p) for p in g.perms]
    out = [np.asarray(W)[np.ix_(inv[l + 1], inv[l])] for l, W in enumerate(layers)]
    return out, None if a is None else np.asarray(a)[inv[-1]]


def _distance(A: Layers, a: np.ndarray | None, B: Layers, b: np.ndarray | None) -> float:
    dist = max(float(np.max(np.abs(X - Y))) for X, Y in zip(A, B))
    return dist if a is None else max(dist, float(np.max(np.abs(a - b))))


@dataclass
class _Problem:
    """One or two nets quantised jointly, ready for refinement."""

    Q: list[Layers]                 # per net: quantised W_l (int)
    init: list[Colours]             # per net: initial colours


def _prepare(nets: list[tuple[Layers, np.ndarray | None]], tol: float,
             input_colours: np.ndarray | None) -> _Problem:
    L = len(nets[0][0])
    Q: list[Layers] = [[] for _ in nets]
    for l in range(L):
        stacked = quantise(np.stack([np.asarray(n[0][l], np.float64) for n in nets]), tol)
        for i in range(len(nets)):
            Q[i].append(stacked[i])
    n0 = nets[0][0][0].shape[1]
    c0 = np.zeros(n0, np.int64) if input_colours is None else np.asarray(input_colours, np.int64)
    init = []
    a_all = [n[1] for n in nets]
    qa = quantise(np.stack(a_all), tol) if a_all[0] is not None else None
    for i, (layers, _) in enumerate(nets):
        cols = [c0.copy()] + [np.zeros(W.shape[0], np.int64) for W in layers]
        if qa is not None:
            cols[-1] = qa[i].astype(np.int64)
        # layer index in the colour: vertices of different layers never share a colour
        init.append([c * (L + 1) + l for l, c in enumerate(cols)])
    return _Problem(Q, init)


def _refine(Q: list[Layers], cols: list[Colours]) -> list[Colours]:
    """Joint colour refinement of several nets; colours are canonical, so comparable across nets."""
    L = len(Q[0])

    def n_colours(cs: list[Colours]) -> int:
        return len({int(c) for net in cs for layer in net for c in layer})

    count = n_colours(cols)
    while True:
        sigs: list[list[list[tuple]]] = []
        for q, c in zip(Q, cols):
            net_sigs = []
            for l in range(L + 1):
                layer = []
                for v in range(len(c[l])):
                    below = tuple(sorted(zip(q[l - 1][v].tolist(), c[l - 1].tolist()))) if l > 0 else ()
                    above = tuple(sorted(zip(q[l][:, v].tolist(), c[l + 1].tolist()))) if l < L else ()
                    layer.append((int(c[l][v]), below, above))
                net_sigs.append(layer)
            sigs.append(net_sigs)
        ranks = {s: r for r, s in enumerate(sorted({s for net in sigs for layer in net for s in layer}))}
        cols = [[np.array([ranks[s] for s in layer], np.int64) for layer in net] for net in sigs]
        new = n_colours(cols)
        if new == count:
            return cols
        count = new


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


class _Search:
    def __init__(self, Q: list[Layers], A: tuple[Layers, np.ndarray | None], B: tuple[Layers, np.ndarray | None],
                 tol: float, limit: int) -> None:
        self.Q, self.A, self.B, self.tol, self.budget = Q, A, B, tol, limit

    def run(self, ca: Colours, cb: Colours) -> Element | None:
        """An element mapping net A (colours ``ca``) onto net B (``cb``), or None."""
        self.budget -= 1
        if self.budget < 0:
            raise _BudgetExceededError
        ca, cb = _refine(self.Q, [ca, cb])
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
            moved, a = apply(g, *self.A)
            return g if _distance(moved, a, *self.B) <= self.tol else None
        layer, members = cell
        v = int(members[0])
        for w in np.flatnonzero(cb[layer] == ca[layer][v]):
            g = self.run(_individualise(ca, layer, v), _individualise(cb, layer, int(w)))
            if g is not None:
                return g
        return None


class _BudgetExceededError(Exception):
    pass


def find_element(A: Layers, a: np.ndarray | None, B: Layers, b: np.ndarray | None, *, tol: float = 1e-6,
                 input_colours: np.ndarray | None = None, limit: int = 20_000) -> Element | None:
    """``g`` with ``g·(A, a) = (B, b)`` within ``tol`` entrywise, or None (also when the search exceeds ``limit``
    nodes, which only very irregular near-symmetric points reach)."""
    A = [np.asarray(W, np.float64) for W in A]
    B = [np.asarray(W, np.float64) for W in B]
    if [W.shape for W in A] != [W.shape for W in B]:
        return None
    a = None if a is None else np.asarray(a, np.float64)
    b = None if b is None else np.asarray(b, np.float64)
    if not invariants_close(A, a, B, b, tol):
        return None
    prob = _prepare([(A, a), (B, b)], tol, input_colours)
    try:
        return _Search(prob.Q, (A, a), (B, b), tol, limit).run(*prob.init)
    except _BudgetExceededError:
        return None


def invariants_close(A: Layers, a: np.ndarray | None, B: Layers, b: np.ndarray | None, tol: float) -> bool:
    """A necessary condition for equivalence: each layer's sorted entries agree within ``tol``."""
    pairs = list(zip(A, B)) + ([] if a is None else [(a, b)])
    return all(float(np.max(np.abs(np.sort(X, axis=None) - np.sort(Y, axis=None)))) <= tol for X, Y in pairs)


@dataclass
class LayeredIsotropy:
    """The stabiliser of a network in ``G``.

    Attributes:
      order: the group's order (exact unless ``exact`` is False).
      name: ``Δ(S5×S1)``-style when the group is the full product of symmetric groups on the first hidden
        layer's orbits acting simultaneously on every layer, else ``"order N, neuron orbits [...]"``.
      neuron_orbits: orbit sizes on the first hidden layer, descending.
      layer_orbits: orbit sizes on every vertex layer (inputs first), each descending.
      generators: elements generating the group.
      exact: False when a search hit its node limit (the group found is then a subgroup).
    """

    order: int
    name: str
    neuron_orbits: list[int]
    layer_orbits: list[list[int]]
    generators: list[Element] = field(repr=False)
    exact: bool = True


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


def isotropy(layers: Layers, a: np.ndarray | None = None, *, tol: float = 1e-6,
             input_colours: np.ndarray | None = None, limit: int = 20_000) -> LayeredIsotropy:
    """The isotropy group of ``(W_1, …, W_L, a)`` (``a = None``: output weights all equal, e.g. fixed 𝟙)."""
    A = [np.asarray(W, np.float64) for W in layers]
    a = None if a is None else np.asarray(a, np.float64)
    prob = _prepare([(A, a)], tol, input_colours)
    search = _Search(prob.Q * 2, (A, a), (A, a), tol, limit)
    cols = _refine(prob.Q, prob.init)[0]
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
        cols = _refine(prob.Q, [_individualise(cols, layer, x)])[0]
        if not exact:
            break
    sizes = [[len(o) for o in _union_orbits(len(c), [g.perms[l] for g in gens])] for l, c in enumerate(cols)]
    neuron = sizes[1]
    # inputs with identical first-layer columns can be swapped fixing every hidden unit (a kernel factor)
    keys = np.concatenate([prob.init[0][0][None, :], prob.Q[0][0]], axis=0).T
    kernel = [int(c) for c in np.unique(keys, axis=0, return_counts=True)[1] if c > 1]
    kernel_order = math.prod(math.factorial(c) for c in kernel)
    if order == 1:
        name = "1"
    elif exact and order == math.prod(math.factorial(s) for s in neuron) * kernel_order:
        name = _product_name(neuron, True, kernel)
    else:
        name = f"order {order}, neuron orbits {neuron}"
    return LayeredIsotropy(order, name, neuron, sizes, gens, exact)
