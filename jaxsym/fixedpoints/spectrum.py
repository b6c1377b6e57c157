"""The Hessian spectrum at a point of a fixed-point space, by isotypic blocks, for real block sizes; the index.

Setting of :mod:`jaxsym.fixedpoints.space`: ``H = Δ(S_{p_1}×…×S_{p_r})`` on a ``k = d`` student, or
``Δ(S_{p_1}×…×S_{p_r}) × S_n`` on a student with ``n`` extra neurons (rows ``k = d + 1 … d + n``, all equal).

**Block spectrum from nested fixed-point spaces.** At a point of Fix(H) the Hessian commutes with H. For a
subgroup ``K ⊂ H`` of the same form (some block split into a bulk and singletons), ``Fix(K) ⊃ Fix(H)`` is a
restricted problem of the same kind, with real block sizes, and its Hessian (in the metric ``diag(counts)``
that makes the parameters orthonormal coordinates of ``R^{k×k}``) is the full Hessian on Fix(K). Fix(K)
carries, of each irreducible ρ of H, ``dim ρ^K`` vectors per copy, so each isotypic block is the Hessian on
a subspace of some Fix(K) orthogonal to the coarser spaces it contains:

- trivial: Fix(H) itself (multiplicity 1);
- standard of block s (``p_s − 1``): Fix(K₁) with K₁ splitting one neuron off block s, orthogonal to Fix(H);
- ``[p−2, 2]`` of block s (``p(p−3)/2``) and ``[p−2, 1, 1]`` (``(p−1)(p−2)/2``): Fix(K₂) with two neurons
  split off block s, orthogonal to both ways of embedding Fix(K₁) in it, even resp. odd under swapping the
  two split neurons;
- standard(s) ⊗ standard(t) (``(p_s−1)(p_t−1)``): one neuron split off each of s and t, orthogonal to the two
  spaces that split only one of them;
- with extra neurons, the standard representation of S_n (``n − 1``): the extra rows moved by ``u_e y`` with
  ``Σ u_e = 0``, a pencil of size r on Fix(H)'s extra parameters (:func:`_extra_pair`), and std(S_n) ⊗
  standard(s) (``(n − 1)(p_s − 1)``), the same on Fix(K₁)'s extra parameters orthogonal to Fix(H)'s.

The multiplicities are the dimension polynomials evaluated at real p, so the spectrum, and with it the index,
is defined along a family in real k. At integer k the blocks give the k²-dimensional Hessian's eigenvalues
exactly (tested against the dense Hessian and against an independent construction from k×k test matrices and
Hessian-vector products, tests/oracles.py).

**One rule for the index.** An eigenvalue is negative below ``−INDEX_TOL`` and two are equal within
``DISTINCT_TOL``; the index counts negative eigenvalues with their multiplicities (:func:`index_of`); a point's
kind uses the sweeps' vocabulary (:func:`kind_of`: ``global``, ``spurious``, ``saddle``). :func:`dense_spectrum`
classifies by the dense Hessian with the same rule (integer sizes only; :mod:`jaxsym.fixedpoints.wide` uses it
as the independent check of the blocks there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from jaxsym.certify.exact import STATUSES
from jaxsym.config import CertifyConfig
from jaxsym.fixedpoints.space import Space, hessian, loss
from jaxsym.landscape import model
from jaxsym.symmetry.spectra import group_eigenvalues

INDEX_TOL = 1e-6  # an eigenvalue below −INDEX_TOL is negative; within it of 0, zero
DISTINCT_TOL = 1e-7  # two eigenvalues closer than this are one (the number of distinct eigenvalues)
GLOBAL_LOSS = CertifyConfig().loss_tol  # the sweeps' τ_L: a critical point with F ≤ τ_L is the global minimum


def index_of(values: np.ndarray, mults: np.ndarray | None = None) -> float:
    """The Hessian index: eigenvalues below ``−INDEX_TOL``, counted with their multiplicities (real ones along a
    family in real k)."""
    values = np.asarray(values, np.float64)
    mults = np.ones(len(values)) if mults is None else np.asarray(mults, np.float64)
    return float(mults[values < -INDEX_TOL].sum())


def kind_of(loss: float, index: float) -> str:
    """The sweeps' status of a critical point (:data:`jaxsym.certify.exact.STATUSES`): ``global`` (F ≤ τ_L),
    ``spurious`` (index 0: a spurious local minimum) or ``saddle``."""
    global_, spurious, saddle = STATUSES[:3]
    return global_ if loss <= GLOBAL_LOSS else spurious if index == 0 else saddle


# --------------------------------------------------------------------------------------------------
# Nested spaces: blocks made of atoms of real sizes
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Nested:
    """A fixed-point space of the refinement lattice: block j is the union of the atoms ``blocks[j]``, atom a
    has ``sizes[a]`` (real) neurons."""

    blocks: tuple[tuple[int, ...], ...]
    sizes: tuple[float, ...]
    extra: float | None = None

    @property
    def space(self) -> Space:
        return Space(tuple(sum(self.sizes[a] for a in blk) for blk in self.blocks), extra=self.extra)


def embedding(coarse: _Nested, fine: _Nested) -> np.ndarray:
    """The linear map ``x_coarse ↦ x_fine`` of a point of Fix(coarse) written in the parameters of Fix(fine)
    (every fine block inside one coarse block), restricted to the free parameters of both: (n_fine, n_coarse).

    ``a_f = a_P(f)``, ``b_f = b_P(f)``, ``c_fg = b_P(f)`` when f, g lie in one coarse block, else
    ``c_P(f)P(g)``, and ``e_f = e_P(f)`` (spaces with extra neurons), with P(f) the coarse block containing f."""
    parent = []
    for blk in fine.blocks:
        owners = [j for j, cb in enumerate(coarse.blocks) if set(blk) <= set(cb)]
        if len(owners) != 1:
            raise ValueError(f"{fine.blocks} does not refine {coarse.blocks}")
        parent.append(owners[0])
    rc, rf = len(coarse.blocks), len(fine.blocks)
    E = np.zeros((fine.space.size, coarse.space.size))
    for f in range(rf):
        E[f, parent[f]] = 1.0
        E[rf + f, rc + parent[f]] = 1.0
        for g in range(rf):
            if f == g:
                continue
            if parent[f] == parent[g]:
                E[2 * rf + f * rf + g, rc + parent[f]] = 1.0
            else:
                E[2 * rf + f * rf + g, 2 * rc + parent[f] * rc + parent[g]] = 1.0
        if fine.space.wide:
            E[2 * rf + rf * rf + f, 2 * rc + rc * rc + parent[f]] = 1.0
    return E[np.ix_(fine.space.free, coarse.space.free)]


_loss_jit = jax.jit(loss)


_hessian = jax.jit(hessian)


def space_hessian(space: Space, z_free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A, G)`` on the free parameters of ``space`` at the point ``z_free``: the Hessian of the restricted loss
    and the metric ``diag(counts)`` (``A y = λ G y`` are the full Hessian's eigenpairs on Fix(space))."""
    free = space.free
    z = np.zeros(space.size)
    z[free] = z_free
    with jax.enable_x64(True):
        A = np.asarray(_hessian(jnp.asarray(z), *space.args(jnp.float64)))
    G = space.counts
    return A[np.ix_(free, free)], np.diag(G[free])


def _complement(G: np.ndarray, spans: list[np.ndarray], tol: float = 1e-9) -> np.ndarray:
    """A basis of the G-orthogonal complement of the span of ``spans``' columns (G positive definite).

    The spans' union is found on the spans themselves (embeddings: entries 0 and 1, so a relative ``tol``
    separates rank from rounding at every k), then the complement is the last ``n − rank`` columns of a full QR
    of ``G U``. Deciding the rank on ``G S`` instead fails at large k: G's entries (neuron counts) reach ``k²``,
    and directions of size 1 fall below ``tol · k²`` (spurious extra eigenvalues from k ≈ 3·10⁴ on)."""
    n = G.shape[0]
    if not spans:
        return np.eye(n)
    U = scipy.linalg.orth(np.concatenate(spans, axis=1), rcond=tol)
    return np.linalg.qr(G @ U, mode="complete")[0][:, U.shape[1]:]


def _restricted_eigs(A: np.ndarray, G: np.ndarray, Q: np.ndarray) -> np.ndarray:
    if Q.shape[1] == 0:
        return np.zeros(0)
    Aq = Q.T @ A @ Q
    return scipy.linalg.eigh((Aq + Aq.T) / 2, Q.T @ G @ Q, eigvals_only=True)


def _parity(P: np.ndarray, Q: np.ndarray, sign: int, tol: float = 1e-9) -> np.ndarray:
    """A basis of the part of range(Q) even (sign = 1) or odd (−1) under the permutation P."""
    M = (Q + sign * (P @ Q)) / 2
    if M.size == 0:
        return M
    u, s, _ = np.linalg.svd(M, full_matrices=False)
    return u[:, s > tol * max(1.0, s.max(initial=0.0))]


def _swap(space: Space, i: int, j: int) -> np.ndarray:
    """The permutation of ``space``'s free parameters that swaps its blocks i and j."""
    r = space.r
    perm = list(range(r))
    perm[i], perm[j] = j, i
    idx = [perm[f] for f in range(r)] + [r + perm[f] for f in range(r)] \
        + [2 * r + perm[f] * r + perm[g] for f in range(r) for g in range(r)] \
        + ([2 * r + r * r + perm[f] for f in range(r)] if space.wide else [])
    P = np.zeros((len(idx), len(idx)))
    P[np.arange(len(idx)), idx] = 1.0
    free = space.free
    return P[np.ix_(free, free)]


@dataclass
class Component:
    """One isotypic block: its irreducible, multiplicity (a polynomial in the block sizes) and eigenvalues."""

    label: str
    mult: float
    values: np.ndarray


def components(p: Sequence[float], x: np.ndarray, extra: float | None = None) -> list[Component]:
    """The Hessian's isotypic blocks at the point with parameters ``x`` (all ``2r + r²`` of them, ``3r + r²``
    with extra neurons) of Fix(Δ(Π S_{p_s}) [× S_extra]) for real block sizes ``p`` and a real number of extra
    neurons (module docstring)."""
    p = [float(v) for v in p]
    r = len(p)
    H = _Nested(tuple((j,) for j in range(r)), tuple(p), extra)
    xH = np.asarray(x, np.float64)[H.space.free]
    out = []
    A, G = space_hessian(H.space, xH)
    out.append(Component("trivial", 1.0, _restricted_eigs(A, G, np.eye(len(xH)))))

    def split(spec: dict[int, int]) -> tuple[_Nested, dict[int, list[int]]]:
        """Split ``spec[s]`` singletons off block s; returns the space and the new singleton atoms of each s."""
        sizes = list(p)
        blocks: list[tuple[int, ...]] = []
        singles: dict[int, list[int]] = {}
        for s in range(r):
            m = spec.get(s, 0)
            if m:
                sizes[s] = p[s] - m
                new = list(range(len(sizes), len(sizes) + m))
                sizes += [1.0] * m
                singles[s] = new
                blocks += [(s,)] + [(a,) for a in new]
            else:
                blocks.append((s,))
        return _Nested(tuple(blocks), tuple(sizes), extra), singles

    def merged(space: _Nested, singles: dict[int, list[int]], keep: set[int]) -> _Nested:
        """``space`` with every split-off singleton not in ``keep`` merged back into its bulk block."""
        owner = {a: s for s, atoms in singles.items() for a in atoms}
        blocks = []
        for (a,) in space.blocks:
            if a < r:
                blocks.append((a, *[b for b, o in owner.items() if o == a and b not in keep]))
            elif a in keep:
                blocks.append((a,))
        return _Nested(tuple(blocks), space.sizes, extra)

    def on(space: _Nested, singles: dict[int, list[int]], keeps: list[set[int]]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hessian and metric on ``space`` at the point, and a basis orthogonal to the coarser spaces that keep
        only the singletons in each of ``keeps``."""
        xf = embedding(merged(space, singles, set()), space) @ xH
        A, G = space_hessian(space.space, xf)
        Q = _complement(G, [embedding(merged(space, singles, keep), space) for keep in keeps])
        return A, G, Q

    n = float(extra or 0.0)
    if n > 0:  # the extra neurons' standard representation (n − 1 copies of each block below)
        A_e, P = _extra_pair(H.space, A, n)
        out.append(Component("std_n", n - 1, _restricted_eigs(A_e, P, np.eye(r))))
    for s in range(r):
        if p[s] > 1:
            K1, singles1 = split({s: 1})
            A, G, Q = on(K1, singles1, [set()])
            out.append(Component(f"std[{s}]", p[s] - 1, _restricted_eigs(A, G, Q)))
            if n > 0:
                A_e, P = _extra_pair(K1.space, A, n)
                Q_e = _complement(P, [embedding(merged(K1, singles1, set()), K1)[-(r + 1):, -r:]])
                out.append(Component(f"std_n⊗std[{s}]", (n - 1) * (p[s] - 1), _restricted_eigs(A_e, P, Q_e)))
        if p[s] > 2:
            K2, singles = split({s: 2})
            a1, a2 = singles[s]
            A, G, Q = on(K2, singles, [{a1}, {a2}])
            i1 = next(i for i, blk in enumerate(K2.blocks) if blk == (a1,))
            i2 = next(i for i, blk in enumerate(K2.blocks) if blk == (a2,))
            P2 = _swap(K2.space, i1, i2)
            out.append(Component(f"[p-2,1,1][{s}]", (p[s] - 1) * (p[s] - 2) / 2,
                                 _restricted_eigs(A, G, _parity(P2, Q, -1))))
            if p[s] > 3:
                out.append(Component(f"[p-2,2][{s}]", p[s] * (p[s] - 3) / 2,
                                     _restricted_eigs(A, G, _parity(P2, Q, 1))))
    for s in range(r):
        for t in range(s + 1, r):
            if p[s] > 1 and p[t] > 1:
                K, singles = split({s: 1, t: 1})
                A, G, Q = on(K, singles, [set(singles[s]), set(singles[t])])
                out.append(Component(f"std[{s}]⊗std[{t}]", (p[s] - 1) * (p[t] - 1), _restricted_eigs(A, G, Q)))
    return out


def _extra_pair(space: Space, A: np.ndarray, n: float) -> tuple[np.ndarray, np.ndarray]:
    """The pencil ``(A_D, P)`` of the extra neurons' standard representation on Fix(``space``), from the Hessian
    ``A`` of its restricted loss on the free parameters (the extra ones, ``e``, last).

    Moving extra row e by ``u_e y`` with ``Σ_e u_e = 0`` has second derivative ``Σ_e u_e² yᵀ D y`` with
    ``D = H_ee − H_ee'`` (``H_ee'`` for e ≠ e' the same for every pair, as the rows are equal). At equal rows
    ``H_ee' = ∂²K(u, v)/∂u∂v = E[1{w·x > 0} x xᵀ] = ½ I``; moving every extra row by the same y is the
    restricted problem's direction ``e ↦ e + y``, whose second derivative is
    ``n yᵀH_ee y + n(n−1)·½‖y‖² = n yᵀ D y + n²/2 ‖y‖²``. So on Fix(space)'s block-constant y (``‖y‖² = yᵀ P y``,
    ``P = diag(block sizes)``): ``A_D = A_ee / n − (n/2) P``, and ``A_D v = λ P v`` are D's eigenpairs there.
    (Real n along a family; the restricted loss's terms are analytic in n.)"""
    r = space.r
    A_ee = A[-r:, -r:]
    P = np.diag(np.asarray(space.p, np.float64))
    return A_ee / n - (n / 2) * P, P


def lowest(comps: list[Component]) -> tuple[float, str]:
    """λ_min over the blocks (with a positive multiplicity) and the block it belongs to."""
    best = (np.inf, "")
    for c in comps:
        if len(c.values) and c.mult > 0 and c.values[0] < best[0]:
            best = (float(c.values[0]), c.label)
    return best


@dataclass
class Classified:
    """A point of a fixed-point space, classified by its Hessian: ``loss`` (float64), ``hess_min`` and the block
    it lies in (``hess_block``; empty from the dense Hessian), ``hess_max``, ``index`` (:func:`index_of`),
    ``n_distinct_eigs`` (to :data:`DISTINCT_TOL`), ``zero_eigs`` (within ``INDEX_TOL`` of 0, with
    multiplicity), and the distinct eigenvalues with their multiplicities (``eig_values``, ``eig_mults``)."""

    loss: float
    hess_min: float
    hess_block: str
    hess_max: float
    index: float
    n_distinct_eigs: int
    zero_eigs: float
    eig_values: list[float]
    eig_mults: list[float]


def _classified(f: float, values: np.ndarray, mults: np.ndarray, block: str) -> Classified:
    grouped = group_eigenvalues(values, DISTINCT_TOL, mults)
    return Classified(f, float(np.min(values)), block, float(np.max(values)), index_of(values, mults),
                      len(grouped), float(mults[np.abs(values) <= INDEX_TOL].sum()), [v for v, _ in grouped],
                      [m for _, m in grouped])


def classify(space: Space, z: np.ndarray) -> Classified:
    """The point ``z`` of ``space`` classified by its isotypic blocks (:func:`components`), whatever its block
    sizes and number of extra neurons (real ones too).

    Accuracy: the block eigenvalues agree with the dense float64 Hessian's (:func:`dense_spectrum`) to about
    1e-15 where no two neurons coincide; at a point where two neurons coincide (angle θ = 0, a saddle of the
    atlas), the restricted derivatives pass through ``arccos`` at 1 and lose half their digits: about 1e-8 there
    (measured at k = 6, ``tests/test_atlas.py``). The index is unaffected (``INDEX_TOL`` is far larger)."""
    with jax.enable_x64(True):
        f = float(_loss_jit(jnp.asarray(z, jnp.float64), *space.args(jnp.float64)))
    comps = [c for c in components(space.p, z, space.extra) if c.mult > 0]
    vals = np.concatenate([c.values for c in comps])
    mults = np.concatenate([np.full(len(c.values), c.mult) for c in comps])
    return _classified(f, vals, mults, lowest(comps)[1])


def dense_spectrum(space: Space, z: np.ndarray) -> Classified:
    """F and the dense Hessian's spectrum of ``Ez`` in the full ``(k·d)``-dimensional space (float64, closed
    forms; integer block sizes and extra neurons)."""
    with jax.enable_x64(True):
        W = jnp.asarray(space.embed(jnp.asarray(z, jnp.float64)))
        V = jnp.eye(W.shape[1], dtype=jnp.float64)
        f = float(model.loss(W, V))
        eigs = np.linalg.eigvalsh(np.asarray(model.hessian(W, V)))
    return _classified(f, eigs, np.ones(len(eigs)), "")
