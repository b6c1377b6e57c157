"""The restricted problem: the loss on a fixed-point space of the identity target, in a handful of parameters.

Setting: target ``V = I_d``, ``k = d + n`` student neurons, isotropy ``H = Δ(S_{p_1}×…×S_{p_r}) × S_n`` with the
first ``d = Σ p_s`` neurons and the d coordinates split into consecutive blocks ``B_1, …, B_r`` of sizes
``p_s``, and ``n`` *extra* neurons permuted among themselves (``n = 0`` and no extra rows at all for ``k = d``).

**Fixed-point space.** ``W ∈ Fix(H)`` iff it is unchanged by every element of H, i.e.

    W_ia = a_s (i = a ∈ B_s),   b_s (i ≠ a, both in B_s),   c_st (i ∈ B_s, a ∈ B_t, s ≠ t),
    w_e[a] = e_t (every extra row e, a ∈ B_t),

a vector ``z = (a[r], b[r], c[r, r], e[r])`` of parameters whatever k is (``e`` only when the space has extra
neurons; ``b_s`` exists when ``p_s > 1``, ``c`` has no diagonal: :func:`free_mask`).

**Restricted loss in O(r³) work.** Neurons of one block are permutations of each other, so every sum over
neurons collapses to counts. With ``S_s = a_s + (p_s−1) b_s``, ``C`` the matrix of ``c_st`` (zero diagonal)
and ``M = C diag(p) Cᵀ``:

    ‖w_s‖²          = a_s² + (p_s−1) b_s² + M_ss
    w_i·w_j (i≠j∈B_s) = 2 a_s b_s + (p_s−2) b_s² + M_ss
    w_i·w_j (i∈B_s, j∈B_t) = M_st + c_ts S_s + c_st S_t
    F = ½[Σ_s p_s ‖w_s‖²/2 + Σ_s p_s(p_s−1) K_ss + Σ_{s≠t} p_s p_t K_st]
        − [Σ_s p_s K(w_s, e; a_s) + p_s(p_s−1) K(w_s, e; b_s) + Σ_{t≠s} p_s p_t K(w_s, e; c_st)] + ½[d/2 + d(d−1)/2π]

where ``K(·,·; g)`` is the kernel from two norms and an inner product ``g``
(:func:`jaxsym.landscape.model.kernel_from_inner`). The extra rows add, with ``‖w_e‖² = Σ_t p_t e_t²``,
``w_e·v_a = e_t`` and ``w_e·w_i = e_s S_s + Σ_{t≠s} p_t c_st e_t`` (i ∈ B_s),

    ½[n ‖w_e‖²/2 + n(n−1) K(w_e, w_e) + 2 n Σ_s p_s K(w_e, w_s)] − n Σ_t p_t K(w_e, v_t)

(extra rows are parallel to each other: ``K(w_e, w_e')`` at Gram determinant 0). The block sizes and n only
count neurons (``p_s``, ``p_s(p_s−1)``, ``p_s p_t``, ``n p_t``), so the loss is defined for *real* ``p`` and
``n``: that is what makes a family of critical points a curve in real k, d or n.

**Symmetric criticality.** The loss is H-invariant, so its gradient at a point of Fix(H) lies in Fix(H):
``∇_z F = Eᵀ ∇F`` (E the linear embedding z ↦ W, ``EᵀE = diag(counts)``) vanishes exactly when the full
gradient does, and ``‖∇F(Ez)‖ = ‖diag(counts)^{-1/2} ∇_z F‖`` (:func:`full_norm`). A critical point of the
small problem is one of the full problem, found by Newton's method in a handful of unknowns at any k
(:mod:`jaxsym.fixedpoints.solve`).

**One formula, two arithmetics.** :func:`loss` is written over an array namespace and a kernel: ``jax.numpy``
and the float64 kernel for everything differentiable, numpy object arrays of mpmath numbers and the same
kernel in ``digits`` digits for :func:`loss_precise` (float64 loses every digit of the loss above k ≈ 10⁴ to
cancellation between its three sums).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.landscape import model

Array = jax.Array


# --------------------------------------------------------------------------------------------------
# The space
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Space:
    """``Fix(Δ(S_{p_1}×…×S_{p_r}) × S_n)``: block sizes ``p`` (real numbers > 0; integers for a point of
    ``R^{k×d}``) and ``extra`` = n extra neurons (None: the space of ``k = d`` students, without the ``e``
    parameters; a number ≥ 0: the space of ``k = d + n`` students, ``e`` frozen when n = 0).

    The sweeps' ``Δ(S_{k−1}×S_1)`` at k = 10 is ``Space((9, 1))``; one more neuron than the teacher in the
    same type is ``Space((9, 1), extra=1)``."""

    p: tuple[float, ...]
    extra: float | None = None

    def __post_init__(self) -> None:
        p = tuple(int(v) if float(v).is_integer() else float(v) for v in self.p)  # numpy ints overflow counts
        if not p or not all(np.isfinite(v) and v > 0 for v in p):
            raise ValueError(f"block sizes must be positive numbers, got {self.p!r}")
        object.__setattr__(self, "p", p)
        if self.extra is not None:
            n = float(self.extra)
            if not (np.isfinite(n) and n >= 0):
                raise ValueError(f"extra neurons must be a non-negative number, got {self.extra!r}")
            object.__setattr__(self, "extra", int(n) if n.is_integer() else n)

    @property
    def r(self) -> int:
        return len(self.p)

    @property
    def d(self) -> float:
        """Input dimension = teacher neurons, ``Σ p``."""
        return sum(self.p)

    @property
    def k(self) -> float:
        """Student neurons, ``d + n``."""
        return self.d + (self.extra or 0)

    @property
    def wide(self) -> bool:
        """Whether the space has the extra neurons' parameters ``e``."""
        return self.extra is not None

    @property
    def blocks(self) -> tuple[int, ...]:
        """The block sizes as integers (a ValueError for real ones)."""
        if not all(isinstance(v, int) for v in self.p):
            raise ValueError(f"block sizes {self.p} are not integers: no point of R^(k×d) has them")
        return tuple(int(v) for v in self.p)

    @property
    def size(self) -> int:
        """Number of parameters, ``2r + r²`` (``+ r`` with extra neurons)."""
        return 2 * self.r + self.r * self.r + (self.r if self.wide else 0)

    def args(self, dtype: Any = jnp.float64) -> tuple[Array, ...]:
        """The traced arguments of :func:`loss` after ``z``: ``(p,)`` or ``(p, n)``."""
        p = jnp.asarray(self.p, dtype)
        return (p,) if not self.wide else (p, jnp.asarray(self.extra, dtype))

    @property
    def free(self) -> np.ndarray:
        """(size,) bool: the parameters that exist (:func:`free_mask`)."""
        return free_mask(np.asarray(self.p, np.float64), self.extra)

    @property
    def counts(self) -> np.ndarray:
        """(size,) how many entries of W each parameter fills (``EᵀE = diag(counts)``)."""
        p = np.asarray(self.p, np.float64)
        return counts(p, None if not self.wide else float(self.extra), np)

    def loss(self, z: Array) -> Array:
        """F at ``Ez`` (module docstring), in the dtype of ``z``."""
        z = jnp.asarray(z)
        return loss(z, *self.args(z.dtype))

    def full_grad_norm(self, z: Array) -> Array:
        """‖∇F(Ez)‖_F from the restricted gradient (:func:`full_norm`)."""
        z = jnp.asarray(z)
        return full_grad_norm(z, *self.args(z.dtype))

    def embed(self, z: Array) -> Array:
        """The (k, d) matrix of parameters z: the paired rows (blocks consecutive, row i's own coordinate on the
        diagonal), then the n extra rows."""
        z = jnp.asarray(z)
        blocks = self.blocks
        r = self.r
        a, b, c = _split(z[:2 * r + r * r], jnp.asarray(blocks, z.dtype))
        lab = np.repeat(np.arange(r), blocks)
        d = sum(blocks)
        W = c[lab][:, lab]
        W = jnp.where(lab[:, None] == lab[None, :], b[lab][:, None], W)
        W = jnp.where(np.eye(d, dtype=bool), a[lab][:, None], W)
        if not self.wide:
            return W
        return jnp.concatenate([W, jnp.tile(z[2 * r + r * r:][lab][None, :], (int(self.extra), 1))])

    def project(self, W: np.ndarray) -> np.ndarray:
        """Least-squares parameters of a (k, d) matrix in block form (entry averages), ``z = (EᵀE)⁻¹EᵀW``."""
        W = np.asarray(W, np.float64)
        blocks = self.blocks
        lab = np.repeat(np.arange(self.r), blocks)
        d = len(lab)
        P = W[:d]
        r = self.r
        a = np.array([np.mean(np.diag(P)[lab == s]) for s in range(r)])
        b = np.zeros(r)
        c = np.zeros((r, r))
        for s in range(r):
            for t in range(r):
                blk = P[np.ix_(lab == s, lab == t)]
                if s == t and blocks[s] >= 2:
                    b[s] = (blk.sum() - np.trace(blk)) / (blk.size - blocks[s])
                elif s != t:
                    c[s, t] = blk.mean()
        parts = [a, b, c.ravel()]
        if self.wide:
            rows = W[d:] if len(W) > d else np.zeros((1, d))
            parts.append(np.array([rows[:, lab == t].mean() for t in range(r)]))
        return np.concatenate(parts)


def free_mask(p: np.ndarray, n: float | None = None) -> np.ndarray:
    """The parameters ``(a[r], b[r], c[r, r][, e[r]])`` that exist for block sizes ``p`` (real or integer) and n
    extra neurons: ``b_s`` needs more than one neuron in block s (``p_s > 1``, as :func:`_split` masks it),
    ``c`` has no diagonal, ``e`` needs ``n > 0`` (none at all when ``n`` is None)."""
    r = len(p)
    mask = np.ones(2 * r + r * r, dtype=bool)
    mask[r:2 * r] = np.asarray(p) > 1
    mask[2 * r:] = ~np.eye(r, dtype=bool).ravel()
    return mask if n is None else np.concatenate([mask, np.full(r, n > 0)])


# --------------------------------------------------------------------------------------------------
# The loss as a function of (z, p[, n]), block sizes traced: one compilation serves every k of a family
# --------------------------------------------------------------------------------------------------
def _split(x: Any, p: Any, xp: Any = jnp) -> tuple[Any, Any, Any]:
    r = p.shape[0]
    a = x[:r]
    b = xp.where(p > 1, x[r:2 * r], 0.0)
    c = xp.where(xp.eye(r, dtype=bool), 0.0, x[2 * r:2 * r + r * r].reshape(r, r))
    return a, b, c


def _geometry(x: Any, p: Any, xp: Any) -> tuple[Any, ...]:
    """``(a, b, c, S, M, n2)`` of the paired rows (module docstring): the parameters, ``S_s = a_s + (p_s−1) b_s``,
    ``M = C diag(p) Cᵀ`` and the squared row norms ``‖w_s‖²``."""
    a, b, c = _split(x, p, xp)
    M = c @ xp.diag(p) @ c.T
    return a, b, c, a + (p - 1) * b, M, a * a + (p - 1) * b * b + xp.diag(M)


def _paired(geo: tuple[Any, ...], p: Any, xp: Any, kern: Callable[..., Any]) -> Any:
    """F of the paired rows (module docstring) from their :func:`_geometry`, over the namespace ``xp`` with the
    kernel ``kern``."""
    a, b, c, S, M, n2 = geo
    r = p.shape[0]
    d = xp.sum(p)
    n = xp.sqrt(n2)
    g_same = 2 * a * b + (p - 2) * b * b + xp.diag(M)
    g_cross = M + c.T * S[:, None] + c * S[None, :]
    eye = xp.eye(r, dtype=bool)
    # masked entries get g = 0 (θ = π/2), so that no arccos'(±1) leaks into the gradient through where
    pair_same = xp.where(p > 1, p * (p - 1) * kern(n, n, xp.where(p > 1, g_same, 0.0)), 0.0)
    pp = xp.outer(p, p)
    cross = xp.where(eye, 0.0, pp * kern(n[:, None], n[None, :], xp.where(eye, 0.0, g_cross)))
    ww = 0.5 * (xp.sum(p * n2 / 2) + xp.sum(pair_same) + xp.sum(cross))
    one = xp.ones_like(n)
    # the teacher of a neuron's own coordinate: Gram determinant ‖w_s‖² − a_s² = (p_s−1) b_s² + M_ss, exactly
    wv = (xp.sum(p * kern(n, one, a, (p - 1) * b * b + xp.diag(M)))
          + xp.sum(xp.where(p > 1, p * (p - 1) * kern(n, one, b), 0.0))
          + xp.sum(xp.where(eye, 0.0, pp * kern(n[:, None], 1.0, c))))
    vv = 0.5 * (d / 2 + d * (d - 1) / (2 * xp.pi))
    return ww - wv + vv


def _extra_rows(x: Any, e: Any, p: Any, n: Any, xp: Any, kern: Callable[..., Any]) -> Any:
    """The extra rows' terms (module docstring) at paired parameters ``x`` and extra ones ``e``; with no extra
    neurons, finite dummy terms masked to 0. (The paired rows' :func:`_geometry` is taken here afresh rather than
    shared with :func:`_paired`: the same values, and the gradients keep their order of summation.)"""
    _, _, c, S, _, n2 = _geometry(x, p, xp)
    e = xp.where(n > 0, e, 1.0)
    ns = xp.sqrt(n2)  # norms of the paired rows
    ne2 = xp.sum(p * e * e)
    ne = xp.sqrt(ne2)
    g_es = e * S + c @ (p * e)  # w_e·w_i for i in block s (c has a zero diagonal)
    ww = 0.5 * (n * ne2 / 2 + n * (n - 1) * kern(ne, ne, ne2, 0.0) + 2 * n * xp.sum(p * kern(ne, ns, g_es)))
    wv = n * xp.sum(p * kern(ne, 1.0, e, ne2 - e * e))
    return xp.where(n > 0, ww - wv, 0.0)


_JAX = SimpleNamespace(where=jnp.where, eye=jnp.eye, sum=jnp.sum, diag=jnp.diag, sqrt=jnp.sqrt, outer=jnp.outer,
                       ones_like=jnp.ones_like, pi=jnp.pi)


_KERNEL = functools.partial(model.kernel_from_inner, rolled=True)
"""The kernel of :func:`loss`: its series in a loop, cheaper to compile differentiated twice."""


def loss(z: Array, p: Array, n: Array | None = None, *, xp: Any = _JAX, kern: Callable[..., Any] = _KERNEL) -> Array:
    """F on ``Fix(Δ(S_p) [× S_n])`` at the parameters ``z`` (module docstring): ``z`` (2r + r²,) without
    extra neurons (``n`` None), (3r + r²,) with them; ``p`` (r,) the block sizes (traced). ``xp`` and ``kern``:
    the arithmetic (:func:`loss_precise`)."""
    r = p.shape[0]
    x = z[:2 * r + r * r]
    f = _paired(_geometry(x, p, xp), p, xp, kern)
    return f if n is None else f + _extra_rows(x, z[2 * r + r * r:], p, n, xp, kern)


def hessian(z: Array, p: Array, n: Array | None = None) -> Array:
    """∇²_z :func:`loss` (m, m) at ``z`` (m,): the one Hessian of the restricted problems (Newton's steps, the
    saddle test of a solve, the block spectra). Its kernel's series is rolled (:data:`_KERNEL`): these programs
    are mostly compilation, one per layout ``(r, with or without extra neurons)``, and a cold atlas scan compiled
    about a quarter less with no visible cost warm (docs/benchmarks.md, "The atlas compiles less")."""
    return jax.hessian(loss)(z, p, n)


def counts(p: Array, n: Array | None = None, xp: Any = jnp) -> Array:
    """Entries of W filled by each parameter: ``p_s`` diagonal, ``p_s(p_s−1)`` in-block, ``p_s p_t`` across
    blocks, ``n p_t`` for ``e_t`` (``xp``: numpy for host arrays, jax.numpy for traced ones)."""
    r = p.shape[0]
    c = xp.concatenate([p, p * (p - 1), (xp.outer(p, p) * (1 - xp.eye(r))).ravel()])
    return c if n is None else xp.concatenate([c, n * p])


def full_norm(g: Array, counts: Array) -> Array:
    """‖∇F(Ez)‖_F from the restricted gradient ``g = ∇_z F = Eᵀ∇F``: ∇F = E y with EᵀE y = g, EᵀE = diag(counts)
    (parameters filling no entry count 0 and contribute nothing)."""
    y = jnp.where(counts > 0, g / jnp.where(counts > 0, counts, 1.0), 0.0)
    return jnp.sqrt(jnp.sum(counts * y * y))


def full_grad_norm(z: Array, p: Array, n: Array | None = None) -> Array:
    """‖∇F(Ez)‖_F (:func:`full_norm` of ``∇_z`` :func:`loss`)."""
    return full_norm(jax.grad(loss)(z, p, n), counts(p, n))


# --------------------------------------------------------------------------------------------------
# The same formula in many digits
# --------------------------------------------------------------------------------------------------
@functools.cache
def _mp_arithmetic() -> tuple[SimpleNamespace, Callable[..., Any]]:
    """numpy over object arrays of mpmath numbers, with the names :func:`loss` uses, and the kernel
    ``2πK = √q + (π − atan2(√q, g)) g`` of :func:`jaxsym.landscape.model.kernel_from_inner` in mpmath, broadcasting
    over such arrays (both follow the current mpmath precision)."""
    import mpmath

    def where(cond: Any, a: Any, b: Any) -> Any:
        return np.where(np.asarray(cond, dtype=bool), a, b)

    xp = SimpleNamespace(where=where, eye=np.eye, sum=np.sum, diag=np.diag, sqrt=np.frompyfunc(mpmath.sqrt, 1, 1),
                         outer=np.outer, ones_like=lambda v: np.full(np.shape(v), mpmath.mpf(1), dtype=object),
                         pi=mpmath.pi)

    def one(g: Any, q: Any) -> Any:
        root = mpmath.sqrt(max(q, 0))
        return (root + (mpmath.pi - mpmath.atan2(root, g)) * g) / (2 * mpmath.pi)

    scalar = np.frompyfunc(one, 2, 1)

    def kern(n1: Any, n2: Any, g: Any, q: Any = None) -> Any:
        if q is None:
            q = (n1 * n2) ** 2 - g * g
        return scalar(g, q)

    return xp, kern


def loss_mp(z: np.ndarray, p: np.ndarray, n: Any = None) -> Any:
    """:func:`loss` in the current mpmath precision: ``z`` and ``p`` object arrays of mpmath numbers, ``n`` one
    (or None); the same formula with the array namespace and the kernel swapped."""
    xp, kern = _mp_arithmetic()
    return loss(z, p, n, xp=xp, kern=kern)


def loss_precise(space: Space, z: np.ndarray, digits: int = 50) -> float:
    """:func:`loss` in ``digits``-digit arithmetic (mpmath): the same formula with the kernel and the array
    namespace swapped.

    In float64 its three sums (student–student, student–teacher, teacher–teacher, each ≈ k²/2π) cancel to a
    loss of order 1/k, losing every digit above k ≈ 10⁴ (the cancellation error ≈ 1e-16·k² reaches the loss
    itself); with 50 digits about 30 of them are kept at k = 10⁵. The point ``z`` is a float64 critical point:
    F is stationary there, so the position's error changes F only to second order."""
    import mpmath

    with mpmath.workdps(digits):
        mp = mpmath.mpf
        obj = np.frompyfunc(lambda v: mp(float(v)), 1, 1)
        zz = obj(np.asarray(z, np.float64)).astype(object)
        p = obj(np.asarray(space.p, np.float64)).astype(object)
        n = None if not space.wide else mp(float(space.extra))
        return float(loss_mp(zz, p, n))
