"""Families of critical points by symmetry: fixed-point spaces, continuation in k, block Hessian spectra.

Setting: ``k = d``, target ``V = I``, isotropy ``H = Δ(S_{p_1}×…×S_{p_r})`` with neurons and coordinates
split into consecutive blocks ``B_1, …, B_r`` of sizes ``p_s`` (Σ p_s = k).

**Fixed-point space.** ``W ∈ Fix(H)`` iff ``W[π(i), π(a)] = W[i, a]`` for all ``π ∈ Π S_{p_s}``, i.e.

    W_ia = a_s (i = a ∈ B_s),   b_s (i ≠ a, both in B_s),   c_st (i ∈ B_s, a ∈ B_t, s ≠ t),

a vector ``x = (a, b, c)`` of ``r + #{p_s ≥ 2} + r(r−1)`` numbers whatever k is (5 for ``Δ(S_{k−1}×S_1)``).

**Restricted loss in O(r³) work.** Neurons of one block are permutations of each other, so every sum over
neurons collapses to counts. With ``S_s = a_s + (p_s−1) b_s``, ``C`` the matrix of ``c_st`` (zero diagonal)
and ``M = C diag(p) Cᵀ``:

    ‖w_s‖²          = a_s² + (p_s−1) b_s² + M_ss
    w_i·w_j (i≠j∈B_s) = 2 a_s b_s + (p_s−2) b_s² + M_ss
    w_i·w_j (i∈B_s, j∈B_t) = M_st + c_ts S_s + c_st S_t
    F = ½[Σ_s p_s ‖w_s‖²/2 + Σ_s p_s(p_s−1) K_ss + Σ_{s≠t} p_s p_t K_st]
        − [Σ_s p_s K(w_s, e; a_s) + p_s(p_s−1) K(w_s, e; b_s) + Σ_{t≠s} p_s p_t K(w_s, e; c_st)] + ½[k/2 + k(k−1)/2π]

where ``K(·,·; g)`` is the kernel from two norms and an inner product ``g``. Since the loss is H-invariant,
its gradient at a point of ``Fix(H)`` lies in ``Fix(H)``, so ``∇_x F = Eᵀ ∇F`` (E the linear embedding
x ↦ W) vanishes exactly when the full gradient does: a critical point of the small problem is one of the
full problem, found by Newton's method in a handful of unknowns at any k.

**Block spectrum.** The Hessian commutes with H, so on each isotypic component (an irreducible ρ of
dimension m occurring c times) it acts as a c×c matrix. Taking one test vector ``u`` of ρ and its images
``φ_1(u), …, φ_c(u)`` under c independent equivariant maps into ``R^{k×k}``, the c eigenvalues solve the
generalized problem ``A y = λ G y`` with ``A = ⟨φ_α(u), ∇²F φ_β(u)⟩`` and ``G = ⟨φ_α(u), φ_β(u)⟩``, each
eigenvalue having multiplicity m. Only c Hessian-vector products per irreducible are needed
(:func:`jaxsym.landscape.model.hvp`, O(k²d) each), never the k²×k² Hessian. The irreducibles and maps are those of
:func:`jaxsym.symmetry.spectra.predicted_multiplicities`: trivial (``1_s 1_tᵀ``, ``diag(1_s)``), standard of block s
(``u_s 1_tᵀ``, ``1_t u_sᵀ``, ``diag(u_s)``), ``[p−2,1,1]`` (an antisymmetric triangle), ``[p−2,2]`` (a
symmetric zero-row-sum square) and the products of two standards (``u_s u_tᵀ``, ``u_t u_sᵀ``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.landscape import model
from jaxsym.numerics.solvers import levenberg_marquardt
from jaxsym.symmetry.group import find_element, isotropy
from jaxsym.symmetry.spectra import group_eigenvalues, irrep_dim

kern = model.kernel_from_inner


# --------------------------------------------------------------------------------------------------
# Fixed-point space
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FixedSpace:
    """``Fix(Δ(S_{p_1}×…×S_{p_r}))`` for ``k = d = Σ p``; parameters ``x = (a[r], b[r], c[r, r])`` flattened,
    of which ``free`` marks the meaningful ones (b_s needs p_s ≥ 2; c has no diagonal)."""

    blocks: tuple[int, ...]

    def __post_init__(self) -> None:
        blocks = tuple(int(p) for p in self.blocks)  # numpy integers overflow in the multiplicities
        if not blocks or min(blocks) < 1:
            raise ValueError(f"block sizes must be positive integers, got {self.blocks!r}")
        object.__setattr__(self, "blocks", blocks)

    @property
    def r(self) -> int:
        return len(self.blocks)

    @property
    def k(self) -> int:
        return sum(self.blocks)

    @property
    def size(self) -> int:
        return 2 * self.r + self.r * self.r

    @property
    def free(self) -> np.ndarray:
        return free_mask(np.array(self.blocks, dtype=np.float64))

    @property
    def counts(self) -> np.ndarray:
        """How many entries of W each parameter fills (EᵀE = diag(counts))."""
        return np.asarray(_counts(np.array(self.blocks, dtype=np.float64)))

    def split(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        return _split(jnp.asarray(x), jnp.asarray(self.blocks, dtype=jnp.asarray(x).dtype))

    def embed(self, x: jax.Array) -> jax.Array:
        """The k×k matrix of parameters x (rows = neurons, blocks consecutive)."""
        a, b, c = self.split(jnp.asarray(x))
        lab = np.repeat(np.arange(self.r), self.blocks)
        W = c[lab][:, lab]
        same = lab[:, None] == lab[None, :]
        W = jnp.where(same, b[lab][:, None], W)
        return jnp.where(np.eye(self.k, dtype=bool), a[lab][:, None], W)

    def project(self, W: np.ndarray) -> np.ndarray:
        """Least-squares parameters of a k×k matrix (entry averages), x = (EᵀE)⁻¹EᵀW."""
        W = np.asarray(W, dtype=np.float64)
        lab = np.repeat(np.arange(self.r), self.blocks)
        r = self.r
        a = np.array([np.mean(np.diag(W)[lab == s]) for s in range(r)])
        b = np.zeros(r)
        c = np.zeros((r, r))
        for s in range(r):
            for t in range(r):
                blk = W[np.ix_(lab == s, lab == t)]
                if s == t and self.blocks[s] >= 2:
                    b[s] = (blk.sum() - np.trace(blk)) / (blk.size - self.blocks[s])
                elif s != t:
                    c[s, t] = blk.mean()
        return np.concatenate([a, b, c.ravel()])

    def loss(self, x: jax.Array) -> jax.Array:
        """F restricted to Fix(H), in O(r³) work (module docstring)."""
        return _loss(x, jnp.asarray(self.blocks, dtype=x.dtype))

    def full_grad_norm(self, x: jax.Array) -> jax.Array:
        """‖∇F(Ex)‖_F from the restricted gradient: ∇F = E y with EᵀE y = ∇_x F."""
        return _full_grad_norm(x, jnp.asarray(self.blocks, dtype=x.dtype))


def free_mask(p: np.ndarray) -> np.ndarray:
    """The parameters ``(a[r], b[r], c[r, r])`` that exist for block sizes ``p`` (real or integer): ``b_s``
    needs more than one neuron in block s (``p_s > 1``, as :func:`_split` masks it); ``c`` has no diagonal."""
    r = len(p)
    mask = np.ones(2 * r + r * r, dtype=bool)
    mask[r:2 * r] = np.asarray(p) > 1
    mask[2 * r:] = ~np.eye(r, dtype=bool).ravel()
    return mask


# The restricted problem as functions of (x, p) with the block sizes p traced, so that one compilation
# serves every k of a family (r fixed).
def _split(x: jax.Array, p: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    r = p.shape[0]
    a = x[:r]
    b = jnp.where(p > 1, x[r:2 * r], 0.0)
    c = jnp.where(jnp.eye(r, dtype=bool), 0.0, x[2 * r:].reshape(r, r))
    return a, b, c


def _loss(x: jax.Array, p: jax.Array) -> jax.Array:
    a, b, c = _split(x, p)
    r = p.shape[0]
    k = jnp.sum(p)
    S = a + (p - 1) * b
    M = c @ jnp.diag(p) @ c.T
    n2 = a * a + (p - 1) * b * b + jnp.diag(M)
    n = jnp.sqrt(n2)
    g_same = 2 * a * b + (p - 2) * b * b + jnp.diag(M)
    g_cross = M + c.T * S[:, None] + c * S[None, :]
    eye = jnp.eye(r, dtype=bool)
    # masked entries get g = 0 (θ = π/2), so that no arccos'(±1) leaks into the gradient through where
    pair_same = jnp.where(p > 1, p * (p - 1) * kern(n, n, jnp.where(p > 1, g_same, 0.0)), 0.0)
    pp = jnp.outer(p, p)
    cross = jnp.where(eye, 0.0, pp * kern(n[:, None], n[None, :], jnp.where(eye, 0.0, g_cross)))
    ww = 0.5 * (jnp.sum(p * n2 / 2) + jnp.sum(pair_same) + jnp.sum(cross))
    one = jnp.ones_like(n)
    # the teacher of a neuron's own coordinate: Gram determinant ‖w_s‖² − a_s² = (p_s−1) b_s² + M_ss, exactly
    wv = (jnp.sum(p * kern(n, one, a, (p - 1) * b * b + jnp.diag(M)))
          + jnp.sum(jnp.where(p > 1, p * (p - 1) * kern(n, one, b), 0.0))
          + jnp.sum(jnp.where(eye, 0.0, pp * kern(n[:, None], 1.0, c))))
    vv = 0.5 * (k / 2 + k * (k - 1) / (2 * np.pi))
    return ww - wv + vv


def _counts(p: jax.Array) -> jax.Array:
    """Entries of W filled by each parameter: p_s diagonal, p_s(p_s−1) in-block, p_s p_t across blocks."""
    r = p.shape[0]
    return jnp.concatenate([p, p * (p - 1), (jnp.outer(p, p) * (1 - jnp.eye(r))).ravel()])


def full_norm(g: jax.Array, counts: jax.Array) -> jax.Array:
    """‖∇F(Ex)‖_F from the restricted gradient ``g = ∇_x F = Eᵀ∇F``: ∇F = E y with EᵀE y = g, EᵀE = diag(counts)
    (parameters filling no entry count 0 and contribute nothing)."""
    y = jnp.where(counts > 0, g / jnp.where(counts > 0, counts, 1.0), 0.0)
    return jnp.sqrt(jnp.sum(counts * y * y))


def _full_grad_norm(x: jax.Array, p: jax.Array) -> jax.Array:
    return full_norm(jax.grad(_loss)(x, p), _counts(p))


_jit_loss = jax.jit(_loss)
_jit_gnorm = jax.jit(_full_grad_norm)


@partial(jax.jit, static_argnames=("loss", "gnorm", "iters"))
def restricted_newton(loss: Callable[..., jax.Array], gnorm: Callable[..., jax.Array], x0: jax.Array,
                      args: tuple[jax.Array, ...], free: jax.Array, tol: float, iters: int
                      ) -> tuple[jax.Array, jax.Array]:
    """Levenberg–Marquardt on ``∇_x loss(x, *args) = 0`` over the ``free`` parameters, steps accepted by the
    full-space gradient norm ``gnorm(x, *args)``: ``(x, gnorm)``. One solver for every restricted loss (this
    module's, and the wide students' of :mod:`jaxsym.fixedpoints.wide`); ``loss`` and ``gnorm`` are module-level
    functions
    (static: one compilation per pair and shapes)."""
    s = levenberg_marquardt(lambda x: jax.grad(loss)(x, *args), lambda x: jax.hessian(loss)(x, *args), x0,
                            iters=iters, tol=tol, norm=lambda x, g: gnorm(x, *args), free=free, mu0=1e-8,
                            mu_min=1e-16, mu_max=1.5e10)
    return s.x, s.gn


def newton(space: FixedSpace, x0: np.ndarray, *, tol: float = 1e-12, iters: int = 60) -> tuple[np.ndarray, bool]:
    """Levenberg–Marquardt solve of ``∇_x F = 0`` in the small space (:mod:`jaxsym.numerics.solvers`), accepting steps
    by the full-space ‖∇F(Ex)‖; returns ``(x, converged)`` with converged meaning ‖∇F(Ex)‖ ≤ tol."""
    x, gn = newton_at(np.array(space.blocks, np.float64), x0, tol=tol, iters=iters)
    return x, gn <= tol


def newton_at(p: np.ndarray, x0: np.ndarray, *, tol: float = 1e-12, iters: int = 60) -> tuple[np.ndarray, float]:
    """:func:`newton` for block sizes ``p`` given as numbers (real ones too: :mod:`jaxsym.fixedpoints.continuum`);
    returns ``(x, full-space ‖∇F(Ex)‖)``."""
    free = free_mask(p)
    with jax.enable_x64(True):
        x = jnp.asarray(np.where(free, np.asarray(x0, np.float64), 0.0))
        x, gn = restricted_newton(_loss, _full_grad_norm, x, (jnp.asarray(p, jnp.float64),), jnp.asarray(free), tol,
                                  iters)
        return np.asarray(x), float(gn)


# --------------------------------------------------------------------------------------------------
# Block spectrum
# --------------------------------------------------------------------------------------------------
def _isotypic_test_vectors(blocks: tuple[int, ...]) -> list[tuple[str, int, list[np.ndarray]]]:
    """(irreducible label, its dimension, images φ_α(u) as k×k matrices) for every irreducible type."""
    k = sum(blocks)
    edges = np.concatenate([[0], np.cumsum(blocks)])
    idx = [np.arange(edges[s], edges[s + 1]) for s in range(len(blocks))]
    ones = [np.zeros(k) for _ in blocks]
    for s, ix in enumerate(idx):
        ones[s][ix] = 1.0

    def unit(i: int) -> np.ndarray:
        e = np.zeros(k)
        e[i] = 1.0
        return e

    out = []
    triv = [np.outer(ones[s], ones[t]) for s in range(len(blocks)) for t in range(len(blocks))]
    triv += [np.diag(ones[s]) for s, p in enumerate(blocks) if p >= 2]
    out.append(("trivial", 1, triv))
    for s, p in enumerate(blocks):
        if p < 2:
            continue
        u = unit(idx[s][0]) - unit(idx[s][1])
        vecs = [np.outer(u, ones[t]) for t in range(len(blocks))] + [np.outer(ones[t], u) for t in range(len(blocks))]
        if p >= 3:
            vecs.append(np.diag(u))
        out.append((f"std[{s}]", p - 1, vecs))
        if p >= 3:
            i0, i1, i2 = idx[s][:3]
            A = np.zeros((k, k))
            for x, y in ((i0, i1), (i1, i2), (i2, i0)):
                A[x, y], A[y, x] = 1.0, -1.0
            out.append((f"[p-2,1,1][{s}]", irrep_dim((p - 2, 1, 1)), [A]))
        if p >= 4:
            i0, i1, i2, i3 = idx[s][:4]
            B = np.zeros((k, k))
            for x, y, v in ((i0, i1, 1), (i2, i3, 1), (i0, i2, -1), (i1, i3, -1)):
                B[x, y] = B[y, x] = v
            out.append((f"[p-2,2][{s}]", irrep_dim((p - 2, 2)), [B]))
    for s, p in enumerate(blocks):
        for t, q in enumerate(blocks):
            if t > s and p >= 2 and q >= 2:
                us = unit(idx[s][0]) - unit(idx[s][1])
                ut = unit(idx[t][0]) - unit(idx[t][1])
                out.append((f"std[{s}]⊗std[{t}]", (p - 1) * (q - 1), [np.outer(us, ut), np.outer(ut, us)]))
    return out


@dataclass
class BlockSpectrum:
    """Hessian eigenvalues at a point of Fix(H), by isotypic component.

    Attributes:
      values: (n,) eigenvalues, ascending.   mults: (n,) their multiplicities.   labels: irreducible of each.
    """

    values: np.ndarray
    mults: np.ndarray
    labels: list[str] = field(default_factory=list)

    def grouped(self, tol: float = 1e-6) -> list[tuple[float, int]]:
        """Distinct eigenvalues (merging equal values from different components) with multiplicities."""
        return group_eigenvalues(self.values, tol, self.mults)


def block_spectrum(space: FixedSpace, x: np.ndarray) -> BlockSpectrum:
    """The full k²-dimensional Hessian spectrum at ``E x`` from small generalized eigenproblems."""
    import scipy.linalg

    with jax.enable_x64(True):
        W = space.embed(jnp.asarray(x, jnp.float64))
        V = jnp.eye(space.k, dtype=jnp.float64)
        accurate = space.k <= 200  # the accurate angles need a (k, k, k) temporary
        hvp_jit = jax.jit(model.hvp, static_argnames="accurate")  # W, V as arguments: no constant folding

        def hvp(X: jax.Array) -> jax.Array:
            return hvp_jit(W, V, X, accurate=accurate)
        values, mults, labels = [], [], []
        for label, dim, vecs in _isotypic_test_vectors(space.blocks):
            Phi = np.stack([v.ravel() for v in vecs], axis=1)
            HPhi = np.stack([np.asarray(hvp(jnp.asarray(v))).ravel() for v in vecs], axis=1)
            A = Phi.T @ HPhi
            A = (A + A.T) / 2
            G = Phi.T @ Phi
            lam = scipy.linalg.eigh(A, G, eigvals_only=True)
            values += list(lam)
            mults += [dim] * len(lam)
            labels += [label] * len(lam)
    order = np.argsort(values, kind="stable")
    return BlockSpectrum(np.asarray(values)[order], np.asarray(mults)[order], [labels[i] for i in order])


# --------------------------------------------------------------------------------------------------
# From a sweep's point to a family, and continuation in k
# --------------------------------------------------------------------------------------------------
def to_block_form(W: np.ndarray, tol: float = 1e-6) -> tuple[FixedSpace, np.ndarray]:
    """Permute a k×k point with product-type isotropy into block form; returns its space and parameters."""
    iso = isotropy(W, tol=tol)
    blocks = tuple(sorted(iso.neuron_orbits, reverse=True))
    space = FixedSpace(blocks)
    # rows ordered by neuron orbit (largest first); then, inside each block, each neuron's own coordinate
    order = np.concatenate(sorted(iso.row_orbits, key=lambda o: (-len(o), o[0])))
    Wr = np.asarray(W, np.float64)[order]
    # columns: inside each row block the distinguished (diagonal) column of a neuron is the one whose value
    # differs from the rest of its block row; match it greedily, then fill by column orbits
    col_orbits = sorted(iso.col_orbits, key=lambda o: (-len(o), o[0]))
    cols: list[int] = []
    start = 0
    for p in blocks:
        cands = [o for o in col_orbits if len(o) == p and not set(o) & set(cols)]
        best = None
        for cand in cands:  # the column orbit whose submatrix has the diagonal+constant pattern
            sub = Wr[start:start + p][:, cand]
            perm = []
            for i in range(p):
                row = sub[i]
                j = int(np.argmax(np.abs(row - np.median(row)))) if p >= 3 else i
                perm.append(cand[j])
            if len(set(perm)) == p:
                best = perm
                break
        if best is None:
            raise ValueError(f"point with isotropy {iso.name} is not of the block form Δ(Π S_p)")
        cols += best
        start += p
    Wb = Wr[:, cols]
    x = space.project(Wb)
    with jax.enable_x64(True):
        rebuilt = np.asarray(space.embed(jnp.asarray(x)))
    if np.max(np.abs(rebuilt - Wb)) > 100 * tol:
        g = find_element(rebuilt, np.asarray(W), tol=100 * tol)
        if g is None:
            raise ValueError(f"could not put the point into block form {blocks} (max deviation "
                             f"{np.max(np.abs(rebuilt - Wb)):.2e})")
    return space, x


def grow(space: FixedSpace, x: np.ndarray, by: int = 1) -> tuple[FixedSpace, np.ndarray]:
    """The same family at k + by: the largest block grows (Δ(S_{k−1}×S_1) → Δ(S_k×S_1))."""
    blocks = list(space.blocks)
    blocks[0] += by
    if blocks[0] < 1:
        raise ValueError("the family has no member at this k")
    return FixedSpace(tuple(blocks)), np.asarray(x)


@dataclass
class FamilyPoint:
    k: int
    x: np.ndarray
    loss: float
    grad_norm: float
    converged: bool


def continue_family(space: FixedSpace, x: np.ndarray, k_max: int, *, step: int = 1, tol: float = 1e-12,
                    on_point: object = None) -> list[FamilyPoint]:
    """Follow a critical point of Fix(H) from its k to ``k_max`` (step > 0) or down (step < 0).

    The predictor extrapolates the parameters linearly in k from the last two points; Newton corrects.
    Stops where Newton fails (the family dies, or bifurcates).
    """
    x, ok = newton(space, x, tol=tol)
    pts: list[FamilyPoint] = []
    prev: tuple[int, np.ndarray] | None = None
    while True:
        with jax.enable_x64(True):
            p = jnp.asarray(space.blocks, jnp.float64)
            f = float(_jit_loss(jnp.asarray(x), p))
            gn = float(_jit_gnorm(jnp.asarray(x), p))
        pts.append(FamilyPoint(space.k, np.asarray(x), f, gn, ok))
        if callable(on_point):
            on_point(pts[-1])
        if not ok:
            break
        nk = space.k + step
        if (step > 0 and nk > k_max) or (step < 0 and (nk < k_max or space.blocks[0] + step < 1)):
            break
        guess = x if prev is None else x + (x - prev[1]) * step / (space.k - prev[0])
        prev = (space.k, x)
        space, _ = grow(space, x, step)
        x, ok = newton(space, guess, tol=tol)
    return pts


# --------------------------------------------------------------------------------------------------
# A whole family: table and plots
# --------------------------------------------------------------------------------------------------
def follow(W0: np.ndarray, k_max: int, spectra_at: list[int], *, progress: bool = False) -> tuple[object, object]:
    """Follow the family of the critical point ``W0`` (k = d, V = I, isotropy Δ(Π S_p)) down to where it
    is born and up to ``k_max``; compute block spectra at the ``spectra_at`` values of k (and check the full
    closed-form gradient there). Returns ``(table, spectra)`` as pandas DataFrames."""
    import pandas as pd

    space, x = to_block_form(W0)
    tail = space.blocks[1:]
    up = continue_family(space, x, k_max)
    down = continue_family(space, x, 1, step=-1)
    pts = {p.k: p for p in down + up}
    rows, spec_rows = [], []
    for k in sorted(pts):
        p = pts[k]
        rows.append({"k": k, "blocks": [k - sum(tail), *tail], "loss": p.loss, "grad_norm": p.grad_norm,
                     "converged": p.converged, "x": p.x.tolist()})
    born = min(k for k, p in pts.items() if p.converged)
    # spectra at every k up to the start (where the critical point may turn from saddle into minimum)
    below = set(range(born, space.k + 1))
    for k in sorted(set(spectra_at) | below | {max(k for k, p in pts.items() if p.converged)}):
        p = pts.get(k)
        if p is None or not p.converged:
            continue
        sp = FixedSpace((k - sum(tail), *tail))
        bs = block_spectrum(sp, p.x)
        grouped = bs.grouped(1e-7)
        with jax.enable_x64(True):
            W = sp.embed(jnp.asarray(p.x))
            full = float(jnp.linalg.norm(model.grad(W, jnp.eye(k), accurate=k <= 200)))
        spec_rows.append({"k": k, "hess_min": float(bs.values[0]), "hess_max": float(bs.values[-1]),
                          "n_distinct_eigs": len(grouped), "eig_values": [v for v, _ in grouped],
                          "eig_mults": [m for _, m in grouped], "full_grad_norm": full,
                          "bounded_eigs": int(sum(m for v, m in grouped if v < 1.0)),
                          "largest": [v for v, _ in grouped[-3:]]})
        if progress:
            print(f"  k = {k}: λ_min = {bs.values[0]:.3e}, {len(grouped)} distinct eigenvalues, "
                  f"‖∇F‖ (full) = {full:.1e}", flush=True)
    return pd.DataFrame(rows), pd.DataFrame(spec_rows)


def fit_power(k: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares fit ``y ≈ c·k^a`` on log–log axes; returns ``(c, a)``."""
    a, logc = np.polyfit(np.log(k), np.log(y), 1)
    return float(np.exp(logc)), float(a)
