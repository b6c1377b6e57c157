"""Population losses for other activations and for non-isotropic Gaussian inputs.

For a student ``f_W(x) = Σ_i σ(w_i·x)`` and teacher ``f_V`` with inputs ``x ~ N(0, Σ)``,

    F(W) = ½ E[(f_W(x) − f_V(x))²] = ½ Σ_ij κ(w_i, w_j) − Σ_ij κ(w_i, v_j) + ½ Σ_ij κ(v_i, v_j),
    κ(u, v) = E[σ(u·x) σ(v·x)],

and ``(u·x, v·x)`` is a centred Gaussian pair with covariance ``[[uᵀΣu, uᵀΣv], [uᵀΣv, vᵀΣv]]``, so every
κ depends on three numbers. **Non-isotropic inputs** are exact: with ``Σ = L Lᵀ``, ``w·x = (Lᵀw)·z`` for
``z ~ N(0, I)``, so ``F_Σ(W; V) = F_I(W L; V L)`` (:func:`loss`, argument ``sigma``).

κ is computed by

- ``relu``: the arc-cosine closed form of :mod:`jaxsym.model`;
- ``erf``: ``κ = (2/π) arcsin(2 uᵀΣv / √((1 + 2uᵀΣu)(1 + 2vᵀΣv)))`` (Williams 1997);
- ``leaky_relu`` (slope 0.1): ``(1+α²) K(u, v) − 2α K(u, −v)`` with the arc-cosine kernel K;
- anything else (``softplus``, ``tanh``, ``sigmoid``, ``gelu`` or a callable): a two-dimensional
  Gauss–Hermite rule of ``n`` points per axis on the Cholesky factor of the 2×2 covariance, exact for
  polynomials of degree < 2n and spectrally accurate for smooth σ at moderate scale; its accuracy drops
  as ``uᵀΣu`` grows (σ(‖u‖z) sharpens towards a step): check ``n`` against Monte Carlo for large weights.

Everything is written for one example and is differentiable (``jax.grad``) and vmappable; smooth
activations have no NaN at ``W = V`` (the kink of relu is why :mod:`jaxsym.model` needs closed forms).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym import model

Array = jax.Array

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "erf": jax.scipy.special.erf,
    "softplus": jax.nn.softplus,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "gelu": lambda z: jax.nn.gelu(z, approximate=False),
    "leaky_relu": lambda z: jax.nn.leaky_relu(z, 0.1),
}


def _gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E[g(z)], z ~ N(0, 1) (probabilists' Hermite rule)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / np.sqrt(2 * np.pi)


def _safe_sqrt(x: Array) -> Array:
    """√max(x, 0) with a zero (not infinite) derivative where x ≤ 0."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def kappa_matrix(sigma_fn: Callable[[Array], Array], A: Array, B: Array, *, n: int = 64) -> Array:
    """``κ(a_i, b_j) = E[σ(a_i·z) σ(b_j·z)]``, z ~ N(0, I), by 2-d Gauss–Hermite quadrature; (n_a, n_b)."""
    x, w = _gauss_hermite(n)
    x = jnp.asarray(x, A.dtype)
    w = jnp.asarray(w, A.dtype)
    saa = jnp.sum(A * A, axis=1)[:, None]
    sbb = jnp.sum(B * B, axis=1)[None, :]
    sab = A @ B.T
    # (p, q) = (l11 z1, l21 z1 + l22 z2) with l11 = √saa, l21 = sab/l11, l22 = √(sbb − l21²)
    l11 = _safe_sqrt(saa)
    l21 = jnp.where(l11 > 0, sab / jnp.where(l11 > 0, l11, 1.0), 0.0)
    # at a = b (every diagonal term) l22 = 0; κ is even in l22, so the derivative through it is 0 there
    l22 = _safe_sqrt(sbb - l21 * l21)
    sp = sigma_fn(l11[..., None] * x)                                     # (n_a, 1, n)
    sq = sigma_fn(l21[..., None, None] * x[:, None] + l22[..., None, None] * x[None, :])  # (n_a, n_b, n, n)
    inner = jnp.einsum("abij,j->abi", sq, w)
    return jnp.einsum("abi,abi,i->ab", jnp.broadcast_to(sp, inner.shape), inner, w)


def kappa_erf(A: Array, B: Array) -> Array:
    """Closed form of ``E[erf(a·z) erf(b·z)]`` (Williams 1997); (n_a, n_b)."""
    saa = jnp.sum(A * A, axis=1)[:, None]
    sbb = jnp.sum(B * B, axis=1)[None, :]
    arg = 2 * (A @ B.T) / jnp.sqrt((1 + 2 * saa) * (1 + 2 * sbb))
    return (2 / jnp.pi) * jnp.arcsin(jnp.clip(arg, -1.0, 1.0))


def kappa_leaky_relu(A: Array, B: Array, alpha: float = 0.1) -> Array:
    """Closed form for ``σ(z) = relu(z) − α relu(−z)``: ``κ = (1+α²) K(a, b) − 2α K(a, −b)``."""
    same = A is B
    k_pos = model.kernel_matrix(model.geometry(A, B, same=same))
    k_neg = model.kernel_matrix(model.geometry(A, -B))
    return (1 + alpha**2) * k_pos - 2 * alpha * k_neg


def _kappa(activation: str | Callable[[Array], Array], A: Array, B: Array, n: int) -> Array:
    if activation == "relu":
        return model.kernel_matrix(model.geometry(A, B, same=A is B))
    if activation == "leaky_relu":
        return kappa_leaky_relu(A, B)
    if activation == "erf":
        return kappa_erf(A, B)
    fn = ACTIVATIONS[activation] if isinstance(activation, str) else activation
    return kappa_matrix(fn, A, B, n=n)


def loss(W: Array, V: Array, activation: str | Callable[[Array], Array] = "relu", *,
         sigma: Array | None = None, n: int = 64) -> Array:
    """Population loss for activation σ and inputs ``N(0, sigma)`` (default identity); a scalar.

    Args:
      W: (k, d) student.   V: (m, d) teacher.
      activation: a name in :data:`ACTIVATIONS` or a callable σ (vectorised).
      sigma: (d, d) input covariance (symmetric positive definite) or None for the identity.
      n: Gauss–Hermite points per axis (quadrature activations only).
    """
    V = V.astype(W.dtype)
    if sigma is not None:
        L = jnp.linalg.cholesky(jnp.asarray(sigma, W.dtype))
        W, V = W @ L, V @ L
    if activation == "relu":
        return model.loss(W, V)
    kww = _kappa(activation, W, W, n)
    kwv = _kappa(activation, W, V, n)
    kvv = _kappa(activation, V, V, n)
    return 0.5 * jnp.sum(kww) - jnp.sum(kwv) + 0.5 * jnp.sum(kvv)


class Objective(NamedTuple):
    """The loss of one setting as three single-example functions of ``(W, V)``: ``loss``, ``grad`` (k, d) and
    ``hessian`` (k·d, k·d). The certificate and spectra take one; the ReLU/isotropic one is closed form.
    ``key`` is what it is built from, ``(activation, input_corr)``: the key of its stored programs
    (:mod:`jaxsym.programs`)."""

    loss: Callable[[Array, Array], Array]
    grad: Callable[[Array, Array], Array]
    hessian: Callable[[Array, Array], Array]
    key: tuple[str, float] = ("relu", 0.0)


RELU = Objective(model.loss, model.grad, model.hessian)


def exchangeable_cov(d: int, rho: float) -> np.ndarray:
    """``Σ = (1 − ρ) I + ρ 11ᵀ``: correlated inputs whose law is invariant under every coordinate permutation
    (so the symmetry group of the problem is unchanged); positive definite for −1/(d−1) < ρ < 1."""
    return (1 - rho) * np.eye(d) + rho * np.ones((d, d))


def objective(activation: str = "relu", input_corr: float = 0.0) -> Objective:
    """The :class:`Objective` of an activation and exchangeable input correlation ``input_corr``.

    ReLU with isotropic inputs uses the closed forms of :mod:`jaxsym.model`; correlated ReLU uses them
    through the whitening map ``W ↦ W L``; every other setting differentiates :func:`loss` with JAX.
    """
    if activation == "relu" and input_corr == 0.0:
        return RELU

    def chol(W: Array) -> Array | None:
        if input_corr == 0.0:
            return None
        return jnp.linalg.cholesky(jnp.asarray(exchangeable_cov(W.shape[1], input_corr), W.dtype))

    def f(W: Array, V: Array) -> Array:
        L = chol(W)
        return loss(W, V, activation, sigma=None if L is None else L @ L.T)

    def g(W: Array, V: Array) -> Array:
        if activation == "relu":  # chain rule through W L
            L = chol(W)
            return model.grad(W @ L, V.astype(W.dtype) @ L) @ L.T
        return jax.grad(f)(W, V)

    def h(W: Array, V: Array) -> Array:
        k, d = W.shape
        if activation == "relu":  # ∂²F/∂W_ia∂W_jb = Σ_ce H'_ic,je L_ac L_be
            L = chol(W)
            H = model.hessian(W @ L, V.astype(W.dtype) @ L).reshape(k, d, k, d)
            return jnp.einsum("icje,ac,be->iajb", H, L, L).reshape(k * d, k * d)
        return jax.hessian(f)(W, V).reshape(k * d, k * d)

    return Objective(f, g, h, (activation, float(input_corr)))
