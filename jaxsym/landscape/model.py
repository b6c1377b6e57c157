"""Closed-form population loss of a two-layer ReLU teacher–student network.

Student ``f_W(x) = Σ_i relu(w_i·x)`` with ``W ∈ R^{k×d}`` (rows are neurons), teacher ``f_V`` with
``V ∈ R^{m×d}``, inputs ``x ~ N(0, I_d)``. With the arc-cosine kernel

    K(u, v) = E[relu(u·x) relu(v·x)] = ‖u‖‖v‖ (sin θ + (π − θ) cos θ) / (2π),   θ = ∠(u, v),

the population loss is

    F(W) = ½ E[(f_W(x) − f_V(x))²] = ½ Σ_ij K(w_i, w_j) − Σ_ij K(w_i, v_j) + ½ Σ_ij K(v_i, v_j).

``jax.grad`` of that formula is NaN wherever θ = 0 (the derivative of arccos at 1), which includes the
diagonal ``i = j`` and ``W = V``, so the gradient and Hessian below are written in closed form.

Kernel derivatives (û = u/‖u‖, c = cos θ, s = sin θ, p = v̂ − c û, so ‖p‖ = s):

    ∇_u K           = (1/2π) [ ‖v‖ s û + (π − θ) v ]
    ∇_u ∇_vᵀ K      = (1/2π) [ (π − θ) I + s c ûûᵀ − (c/s) ppᵀ + s (ûpᵀ + pûᵀ) ]
    ∇_u ∇_uᵀ K      = ‖v‖ / (2π ‖u‖) [ s (I − ûûᵀ) + ppᵀ / s ]

(the second is ``E[1{u·x>0} 1{v·x>0} x xᵀ]``; the third is the delta term ``E[relu(v·x) δ(u·x) x xᵀ]``).
Both Hessian terms are continuous at s → 0 (``ppᵀ/s`` has norm s), and ``∇_u∇_vᵀ K(u, u) = I/2`` is
exactly the Hessian of the self term ``½ K(u, u) = ‖u‖²/4``. Hence

    ∇_{w_i} F       = (1/2π) [ r_i w_i + Σ_j (π − θ_ij) w_j − Σ_j (π − φ_ij) v_j ],
                      r_i = (Σ_j ‖w_j‖ sin θ_ij − Σ_j ‖v_j‖ sin φ_ij) / ‖w_i‖
    ∇²_{w_i w_j} F  = ∇_u∇_vᵀ K(w_i, w_j)                           (the j = i term is I/2)
                      + δ_ij [ Σ_l ∇_u∇_uᵀ K(w_i, w_l) − Σ_l ∇_u∇_uᵀ K(w_i, v_l) ]

with θ_ij = ∠(w_i, w_j), φ_ij = ∠(w_i, v_j); the sums include j = i (θ_ii = 0 gives the ½ w_i term).
Hessian rows and columns follow the row-major flattening of ``W`` (index ``i·d + a``).

**Zero rows** of ``W`` are *dead neurons*: ``relu'(0) = 0``, exactly what autodiff of the sampled
objective uses. A zero row contributes nothing to the loss, its gradient row is zero and its Hessian rows
and columns are zero (so it shows up as zero eigenvalues and a ``degenerate`` certificate). The loss is
not differentiable there; this is a documented convention, not a derivative.

**Angles.** Two ways to get θ. ``accurate=True`` (the default of the public functions) computes
``s = ‖v̂ − c û‖`` from the vectors and ``θ = atan2(s, c)``: correct to rounding even for (nearly)
parallel rows, which is what the float64 polish needs to reach ‖∇F‖ ≈ 1e-12 at ``W ≈ V``. It costs an
extra ``(k, m, d)`` tensor. ``accurate=False`` uses only the Gram matrices and ``arccos`` (error of
order √eps on nearly parallel pairs), the fast path of the float32 training engine.

All functions take one example (``W`` of shape ``(k, d)``) and keep its dtype; batch with ``jax.vmap``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

_TWO_PI = 2.0 * jnp.pi


class Geometry(NamedTuple):
    """Pairwise geometry between the rows of ``A`` (n, d) and ``B`` (m, d).

    Attributes:
      na: (n,) row norms of A.        nb: (m,) row norms of B.
      ua: (n, d) unit rows of A (zero rows stay zero).   ub: (m, d) likewise for B.
      cos: (n, m) cos θ.   sin: (n, m) sin θ ≥ 0.   theta: (n, m) θ ∈ [0, π].
      gram: (n, m) A Bᵀ.
    """

    na: Array
    nb: Array
    ua: Array
    ub: Array
    cos: Array
    sin: Array
    theta: Array
    gram: Array


def _unit_rows(A: Array) -> tuple[Array, Array]:
    """Row norms (n,) and unit rows (n, d); zero rows map to zero (no NaN)."""
    n = jnp.sqrt(jnp.sum(A * A, axis=-1))
    safe = jnp.where(n > 0, n, 1.0)
    return n, jnp.where((n > 0)[:, None], A / safe[:, None], 0.0)


def geometry(A: Array, B: Array, *, accurate: bool = True, same: bool = False) -> Geometry:
    """Pairwise norms, cosines, sines and angles between rows of ``A`` (n, d) and ``B`` (m, d).

    Args:
      A, B: row matrices of one dtype.
      accurate: compute ``sin θ = ‖b̂ − cos θ â‖`` from the vectors and ``θ = atan2(sin, cos)``
        (exact to rounding near θ = 0 or π); otherwise ``θ = arccos(cos)`` from the Gram matrix.
      same: ``A is B``; forces θ_ii = 0 exactly on the diagonal of non-zero rows.
    """
    na, ua = _unit_rows(A)
    nb, ub = _unit_rows(B)
    gram = A @ B.T
    cos = jnp.clip(ua @ ub.T, -1.0, 1.0)
    if same:
        eye = jnp.eye(A.shape[0], dtype=bool) & (na > 0)[:, None]
        cos = jnp.where(eye, 1.0, cos)
    if accurate:
        p = ub[None, :, :] - cos[:, :, None] * ua[:, None, :]
        sin = jnp.sqrt(jnp.sum(p * p, axis=-1))
        if same:
            sin = jnp.where(eye, 0.0, sin)
        theta = jnp.arctan2(sin, cos)
    else:
        sin = jnp.sqrt(jnp.maximum(1.0 - cos * cos, 0.0))
        theta = jnp.arccos(cos)
    return Geometry(na, nb, ua, ub, cos, sin, theta, gram)


def _arccos_kernel(norms: Array, sin: Array, theta: Array, inner: Array) -> Array:
    """The one formula of the arc-cosine kernel: ``(‖u‖‖v‖ sin θ + (π − θ) u·v) / 2π``, elementwise."""
    return (norms * sin + (jnp.pi - theta) * inner) / _TWO_PI


def kernel_matrix(g: Geometry) -> Array:
    """``K(a_i, b_j)`` (n, m) from a :class:`Geometry`: ``(‖a‖‖b‖ sin θ + (π − θ) a·b) / 2π``."""
    return _arccos_kernel(g.na[:, None] * g.nb[None, :], g.sin, g.theta, g.gram)


_PSI_TERMS = 14  # terms of ψ(t)/t³ = Σ (−t²)^j / (2j + 3) for t² < 1/16: 16^{-14}/31 < 1e-18


def kernel_from_inner(n1: Array, n2: Array, inner: Array, gram: Array | None = None, *, rolled: bool = False
                      ) -> Array:
    """``K`` from two norms and an inner product (broadcasting), smooth up to alignment.

    With ``g = u·v`` and the Gram determinant ``q = ‖u‖²‖v‖² − g² ≥ 0`` (``gram``; computed from the norms when
    not given — pass it when a cancellation-free form is known, e.g. ``(p−1)b² + M`` in a restricted loss),

        2πK = √q + (π − θ) g,   θ = atan2(√q, g),

    and, where ``q < g²/16`` (near alignment or anti-alignment), the same value as

        2πK = π·max(g, 0) + |g|·ψ(√q/|g|),   ψ(t) = t − atan t = t³ Σ_j (−t²)^j/(2j + 3),

    which is ``q^{3/2}`` times a power series in ``q/g²``: every derivative of K with respect to u and v is
    finite at aligned vectors and equal to its limit (the plain arccos form gives 0·∞ there: the Hessian of
    the loss at the global minimum, whose rows are aligned with the teacher's, came out NaN). ``q^{3/2}`` is
    taken as 0 with zero derivatives where ``q ≤ 0``. ``inner = 0`` gives θ = π/2 exactly (masked entries of a
    restricted loss leak nothing into gradients).

    ``rolled``: the series' Horner steps in a ``jax.lax.fori_loop`` rather than unrolled: the same value and
    derivatives up to rounding (a few ulps, as XLA fuses the two forms differently), and a program much cheaper
    to compile when it is differentiated twice (the restricted problems' Hessians,
    :func:`jaxsym.fixedpoints.space.hessian`); the training step keeps the unrolled form.
    """
    g = jnp.asarray(inner)
    q = (n1 * n2) ** 2 - g * g if gram is None else jnp.asarray(gram)
    q = jnp.maximum(q, 0.0)
    near = q < g * g / 16
    # plain form (θ well conditioned); its square root only where q > 0
    q_pos = jnp.where(q > 0, q, 1.0)
    root = jnp.where(q > 0, jnp.sqrt(q_pos), 0.0)
    plain = root + (jnp.pi - jnp.arctan2(root, g)) * g
    # series form, evaluated only where near (|g| > 0 there)
    g_safe = jnp.where(near, g, 1.0)
    u = jnp.where(near, q, 0.0) / (g_safe * g_safe)
    if rolled:
        coef = jnp.asarray([1.0 / (2 * j + 3) for j in range(_PSI_TERMS - 1, -1, -1)], u.dtype)
        series = jax.lax.fori_loop(0, _PSI_TERMS, lambda i, acc: acc * (-u) + coef[i], jnp.zeros_like(u))
    else:
        series = jnp.zeros_like(u)
        for j in range(_PSI_TERMS - 1, -1, -1):
            series = series * (-u) + 1.0 / (2 * j + 3)
    inside = near & (q > 0)
    q32 = jnp.where(inside, jnp.where(inside, q, 1.0) ** 1.5, 0.0)
    smooth = jnp.pi * jnp.maximum(g_safe, 0.0) + q32 / (g_safe * g_safe) * series
    return jnp.where(near, smooth, plain) / _TWO_PI


def kernel(u: Array, v: Array) -> Array:
    """Arc-cosine kernel ``K(u, v) = E[relu(u·x) relu(v·x)]`` of two vectors (d,), a scalar."""
    return kernel_matrix(geometry(u[None], v[None]))[0, 0]


def _check(W: Array, V: Array) -> None:
    if W.ndim != 2 or V.ndim != 2 or W.shape[1] != V.shape[1]:
        raise ValueError(
            f"expected W of shape (k, d) and V of shape (m, d) with the same d; "
            f"got W{tuple(W.shape)} and V{tuple(V.shape)} (use jax.vmap for batches)"
        )


def loss(W: Array, V: Array, *, accurate: bool = True) -> Array:
    """Population loss ``F(W)`` for student ``W`` (k, d) and teacher ``V`` (m, d); a scalar of W's dtype."""
    _check(W, V)
    V = V.astype(W.dtype)
    kww = kernel_matrix(geometry(W, W, accurate=accurate, same=True))
    kwv = kernel_matrix(geometry(W, V, accurate=accurate))
    kvv = kernel_matrix(geometry(V, V, accurate=accurate, same=True))
    return 0.5 * jnp.sum(kww) - jnp.sum(kwv) + 0.5 * jnp.sum(kvv)


def _grad_from(gww: Geometry, gwv: Geometry, W: Array, V: Array) -> Array:
    """Closed-form gradient (k, d) from precomputed geometries (see module docstring)."""
    nw = gww.na
    inv = jnp.where(nw > 0, 1.0 / jnp.where(nw > 0, nw, 1.0), 0.0)
    r = (gww.sin @ nw - gwv.sin @ gwv.nb) * inv
    g = r[:, None] * W + (jnp.pi - gww.theta) @ W - (jnp.pi - gwv.theta) @ V
    return jnp.where((nw > 0)[:, None], g / _TWO_PI, 0.0)


def grad(W: Array, V: Array, *, accurate: bool = True) -> Array:
    """Gradient ``∇F(W)`` (k, d), NaN-free everywhere (zero rows get a zero gradient row)."""
    _check(W, V)
    V = V.astype(W.dtype)
    return _grad_from(geometry(W, W, accurate=accurate, same=True), geometry(W, V, accurate=accurate), W, V)


def loss_and_grad(W: Array, V: Array, *, accurate: bool = True) -> tuple[Array, Array]:
    """``(F(W), ∇F(W))`` sharing one computation of the pairwise geometry."""
    _check(W, V)
    V = V.astype(W.dtype)
    gww = geometry(W, W, accurate=accurate, same=True)
    gwv = geometry(W, V, accurate=accurate)
    gvv = geometry(V, V, accurate=accurate, same=True)
    f = 0.5 * jnp.sum(kernel_matrix(gww)) - jnp.sum(kernel_matrix(gwv)) + 0.5 * jnp.sum(kernel_matrix(gvv))
    return f, _grad_from(gww, gwv, W, V)


_ACOS_COEFFS = (-0.0012624911, 0.0066700901, -0.0170881256, 0.0308918810, -0.0501743046, 0.0889789874,
                -0.2145988016, 1.5707963050)


def acos_fast(x: Array) -> Array:
    """``arccos`` for float32 as ``√(1−|x|)·P(|x|)`` (Abramowitz & Stegun 4.4.46, |error| ≤ 2e-8 in exact
    arithmetic; within float32 rounding, ≈ 5e-7, in float32), reflected for x < 0. XLA's CPU ``arccos`` is
    not vectorised and costs ~30× more; it dominated the training step (k(k+m) of them per run-step)."""
    a = jnp.abs(x)
    p = jnp.asarray(_ACOS_COEFFS[0], x.dtype)
    for c in _ACOS_COEFFS[1:]:
        p = p * a + c
    r = jnp.sqrt(jnp.maximum(1.0 - a, 0.0)) * p
    return jnp.where(x < 0, jnp.pi - r, r)


SUM_PRODUCTS_MAX = 8192  # k (k + m) d at most: the step's products as broadcast-and-sum (make_train_grad)


def make_train_grad(V: Array, products: str = "auto") -> Callable[[Array], Array]:
    """The training engine's gradient ``W ↦ ∇F(W)`` for a fixed target ``V`` (m, d), fast path.

    Same closed form as :func:`grad` (``accurate=False`` angles), arranged for speed on batches of small
    matrices: the teacher's norms and unit rows are computed once; student and teacher rows are stacked,
    ``U = [Ŵ; V̂]`` (k+m, d) and ``N = [‖w‖; −‖v‖]``, so one Gram product ``C = Ŵ Uᵀ`` gives every cosine and
    one product gives the rest:

        ∇F = (1/2π) [ (S N) ⊙ W / ‖w‖ + ((π − Θ) ⊙ N) U ],    S = sin Θ, Θ = arccos C,  C_ii := 1.

    In float32, ``arccos`` is :func:`acos_fast` (a polynomial, exact to float32 rounding).

    ``products``: how the two products are computed — ``"dot"`` (matrix products), ``"sum"`` (broadcast
    products summed over the shared axis: ``C_ij = Σ_l Ŵ_il U_jl``, ``(MU)_il = Σ_j M_ij U_jl``) or ``"auto"``:
    ``"sum"`` where ``k (k + m) d ≤`` :data:`SUM_PRODUCTS_MAX`, else ``"dot"``. Under the batch-invariant
    compiler options (:func:`jaxsym.numerics.parallel.batch_invariant_options`) XLA's CPU emits these small dots
    as slow loops; as sums they fuse with the elementwise work of the step, 1.4–3.6× faster per step at
    k = d = 6 … 16 and slower from k = d = 20 on (``docs/benchmarks.md``, ``scripts/bench.py --products``). A
    sum's order depends only on the run's own shape, so a run's bits still do not depend on its batch (tests).

    Zero rows of ``W`` are not special-cased here (they give NaN and the run is flagged ``diverged``);
    a Gaussian start has none.
    """
    V = jnp.asarray(V)
    m, d = V.shape
    if products not in ("auto", "dot", "sum"):
        raise ValueError(f"products must be 'auto', 'dot' or 'sum', got {products!r}")

    def train_grad(W: Array) -> Array:
        # the teacher's norms and unit rows: traced here, so XLA folds them into the program (computed eagerly
        # outside, they would be eight small programs to compile per target shape)
        vn = jnp.sqrt(jnp.sum(V * V, axis=-1))
        vu = V / jnp.where(vn > 0, vn, 1.0)[:, None]
        k = W.shape[0]
        summed = products == "sum" or (products == "auto" and k * (k + m) * d <= SUM_PRODUCTS_MAX)
        n = jnp.sqrt(jnp.sum(W * W, axis=-1))
        inv = 1.0 / n
        wu = W * inv[:, None]
        U = jnp.concatenate([wu, vu.astype(W.dtype)], axis=0)
        N = jnp.concatenate([n, -vn.astype(W.dtype)])
        C = jnp.sum(wu[:, None, :] * U[None, :, :], axis=-1) if summed else wu @ U.T
        C = jnp.where(jnp.eye(k, k + m, dtype=bool), 1.0, jnp.clip(C, -1.0, 1.0))
        S = jnp.sqrt(jnp.maximum(1.0 - C * C, 0.0))
        T = acos_fast(C) if jnp.finfo(W.dtype).bits <= 32 else jnp.arccos(C)
        M = (jnp.pi - T) * N[None, :]
        if summed:
            r = jnp.sum(S * N[None, :], axis=-1) * inv
            out = jnp.sum(M[:, :, None] * U[None, :, :], axis=1)
        else:
            r = (S @ N) * inv
            out = M @ U
        return (r[:, None] * W + out) / _TWO_PI

    return train_grad


def _cross_blocks(g: Geometry) -> Array:
    """``∇_u∇_vᵀ K(a_i, b_j)`` for all pairs: (n, m, d, d)."""
    d = g.ua.shape[-1]
    c, s = g.cos[..., None, None], g.sin[..., None, None]
    u = g.ua[:, None, :]
    p = g.ub[None, :, :] - g.cos[..., None] * u  # (n, m, d), ‖p‖ = s
    uu = u[..., :, None] * u[..., None, :]
    pp_over_s = jnp.where(s > 0, p[..., :, None] * p[..., None, :] / jnp.where(s > 0, s, 1.0), 0.0)
    up = u[..., :, None] * p[..., None, :]
    eye = jnp.eye(d, dtype=g.ua.dtype)
    return ((jnp.pi - g.theta)[..., None, None] * eye + s * c * uu - c * pp_over_s
            + s * (up + jnp.swapaxes(up, -1, -2))) / _TWO_PI


def _self_blocks(g: Geometry) -> Array:
    """``Σ_j ∇_u∇_uᵀ K(a_i, b_j)`` for each i: (n, d, d)."""
    d = g.ua.shape[-1]
    inv = jnp.where(g.na > 0, 1.0 / jnp.where(g.na > 0, g.na, 1.0), 0.0)
    p = g.ub[None, :, :] - g.cos[..., None] * g.ua[:, None, :]  # (n, m, d)
    w_pp = jnp.where(g.sin > 0, g.nb[None, :] / jnp.where(g.sin > 0, g.sin, 1.0), 0.0)  # ‖b‖/s
    pp = jnp.einsum("nm,nmd,nme->nde", w_pp, p, p)
    tang = jnp.eye(d, dtype=g.ua.dtype) - g.ua[:, :, None] * g.ua[:, None, :]
    a = g.sin @ g.nb  # Σ_j ‖b_j‖ s_ij
    return inv[:, None, None] * (a[:, None, None] * tang + pp) / _TWO_PI


def hessian(W: Array, V: Array) -> Array:
    """Hessian ``∇²F(W)`` of shape (k·d, k·d), row-major in ``W`` (index ``i·d + a``).

    Uses the accurate angle path; the cost is O(k²d²) memory (the Hessian itself).
    """
    _check(W, V)
    V = V.astype(W.dtype)
    k, d = W.shape
    gww = geometry(W, W, accurate=True, same=True)
    gwv = geometry(W, V, accurate=True)
    blocks = _cross_blocks(gww)  # (k, k, d, d); diagonal blocks are I/2
    diag = _self_blocks(gww) - _self_blocks(gwv)  # (k, d, d)
    blocks = blocks + jnp.eye(k, dtype=W.dtype)[:, :, None, None] * diag[:, None]
    alive = (gww.na > 0).astype(W.dtype)
    blocks = blocks * (alive[:, None] * alive[None, :])[..., None, None]
    return jnp.transpose(blocks, (0, 2, 1, 3)).reshape(k * d, k * d)


def hvp(W: Array, V: Array, X: Array, *, accurate: bool = True) -> Array:
    """Hessian-vector product ``∇²F(W)[X]`` (k, d) in closed form, O(k(k+m)d) work, without the Hessian.

    With ``p_ij = ŵ_j − c_ij û_i`` (so ``p·x = ŵ_j·x − c û_i·x``), the two Hessian terms of the module
    docstring applied to vectors expand into products of the matrices ``Û``, ``Ŵ``, ``V̂`` and ``X``:

        (∇_u∇_vᵀK) x = (1/2π)[(π−θ) x + s c û (û·x) − (c/s) p (p·x) + s (û (p·x) + p (û·x))]
        (∇_u∇_uᵀK) x = ‖v‖/(2π‖u‖) [s (x − û (û·x)) + p (p·x)/s]

    Zero rows follow the dead-neuron convention of :func:`hessian`. Equals ``hessian(W, V) @ X.ravel()``.
    ``accurate=False`` takes the angles from the Gram matrices (no (k, m, d) temporary: what large k needs;
    exact unless rows are nearly parallel).
    """
    _check(W, V)
    V = V.astype(W.dtype)
    X = X.astype(W.dtype)
    gww = geometry(W, W, accurate=accurate, same=True)
    gwv = geometry(W, V, accurate=accurate)
    alive = (gww.na > 0).astype(W.dtype)
    X = X * alive[:, None]
    u = gww.ua

    def safe_inv(s: Array) -> Array:
        return jnp.where(s > 0, 1.0 / jnp.where(s > 0, s, 1.0), 0.0)

    # cross term Σ_j ∇_u∇_vᵀK(w_i, w_j) x_j ; p_ij = ŵ_j − c_ij û_i
    c, s, th = gww.cos, gww.sin, gww.theta
    alpha = u @ X.T                          # α_ij = û_i·x_j
    beta = jnp.sum(u * X, axis=1)[None, :]   # β_j = ŵ_j·x_j
    px = beta - c * alpha                    # p_ij·x_j
    inv_s = safe_inv(s)
    coef_u = s * c * alpha - c * inv_s * px * (-c) + s * px + s * alpha * (-c)   # coefficient on û_i
    coef_w = -c * inv_s * px + s * alpha                                          # coefficient on ŵ_j
    cross = ((jnp.pi - th) @ X + jnp.sum(coef_u, axis=1)[:, None] * u + coef_w @ u) / _TWO_PI

    def self_term(g: Geometry) -> Array:
        inv_n = safe_inv(g.na)
        delta = jnp.sum(g.ua * X, axis=1)            # û_i·x_i
        gamma = X @ g.ub.T                           # γ_il = ŷ_l·x_i
        ppx = gamma - g.cos * delta[:, None]         # p_il·x_i
        w = g.nb[None, :] * safe_inv(g.sin)          # ‖y_l‖/s_il
        a = g.sin @ g.nb                             # Σ_l ‖y_l‖ s_il
        tang = a[:, None] * (X - g.ua * delta[:, None])
        along = (w * ppx) @ g.ub - jnp.sum(w * ppx * g.cos, axis=1)[:, None] * g.ua
        return inv_n[:, None] * (tang + along) / _TWO_PI

    out = cross + self_term(gww) - self_term(gwv)
    return out * alive[:, None]


def identity_target(d: int, m: int, dtype: np.dtype | type = np.float64) -> np.ndarray:
    """The target ``V = I`` (m = d) or ``V = [I_m 0]`` (m < d), shape (m, d), a NumPy array."""
    if m > d:
        raise ValueError(f"identity target needs m <= d, got d={d}, m={m}")
    return np.eye(m, d, dtype=dtype)


TARGETS = ("identity", "orthonormal", "gaussian")


def make_target(kind: str, d: int, m: int, seed: int = 0) -> np.ndarray:
    """A teacher ``V`` (m, d), float64 NumPy.

    - ``identity``: ``V = I`` (m = d) or ``[I_m 0]`` (m < d);
    - ``orthonormal``: m orthonormal rows, a Haar-random rotation of ``[I_m 0]`` (m ≤ d);
    - ``gaussian``: entries ``N(0, 1/d)`` (any m).

    Random targets depend only on ``(seed, m, d)``, so every run of a cell shares its teacher.
    """
    if kind == "identity":
        return identity_target(d, m)
    rng = np.random.default_rng([seed, m, d, 7919])
    if kind == "orthonormal":
        if m > d:
            raise ValueError(f"orthonormal target needs m <= d, got m={m}, d={d}")
        q, r = np.linalg.qr(rng.normal(size=(d, d)))
        q = q * np.sign(np.diag(r))  # Haar measure
        return q[:m]
    if kind == "gaussian":
        return rng.normal(size=(m, d)) / np.sqrt(d)
    raise ValueError(f"unknown target {kind!r}; one of {TARGETS}")

