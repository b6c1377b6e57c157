"""Population losses for other activations and for non-isotropic Gaussian inputs.

For a student ``f_W(x) = Σ_i σ(w_i·x)`` and teacher ``f_V`` with inputs ``x ~ N(0, Σ)``,

    F(W) = ½ E[(f_W(x) − f_V(x))²] = ½ Σ_ij κ(w_i, w_j) − Σ_ij κ(w_i, v_j) + ½ Σ_ij κ(v_i, v_j),
    κ(u, v) = E[σ(u·x) σ(v·x)],

and ``(u·x, v·x)`` is a centred Gaussian pair with covariance ``[[uᵀΣu, uᵀΣv], [uᵀΣv, vᵀΣv]]``, so every
κ depends on three numbers. **Non-isotropic inputs** are exact: with ``Σ = L Lᵀ``, ``w·x = (Lᵀw)·z`` for
``z ~ N(0, I)``, so ``F_Σ(W; V) = F_I(W L; V L)`` (:func:`loss`, argument ``sigma``).

κ is computed by

- ``relu``: the arc-cosine closed form of :mod:`jaxsym.landscape.model`;
- ``erf``: ``κ = (2/π) arcsin(2 uᵀΣv / √((1 + 2uᵀΣu)(1 + 2vᵀΣv)))`` (Williams 1997);
- ``leaky_relu`` (slope 0.1): ``(1+α²) K(u, v) − 2α K(u, −v)`` with the arc-cosine kernel K;
- anything else (``softplus``, ``tanh``, ``sigmoid``, ``gelu`` or a callable): a two-dimensional
  Gauss–Hermite rule of ``n`` points per axis on the Cholesky factor of the 2×2 covariance, exact for
  polynomials of degree < 2n and spectrally accurate for smooth σ at moderate scale; its accuracy drops
  as ``uᵀΣu`` grows (σ(‖u‖z) sharpens towards a step): check ``n`` against Monte Carlo for large weights.

Everything is written for one example and is differentiable (``jax.grad``) and vmappable, NaN-free at ``W = V``
and at parallel rows: smooth activations by construction, leaky ReLU through the kernel written smooth up to
alignment (:func:`jaxsym.landscape.model.kernel_from_inner`), ReLU by its closed-form derivatives.

**One record per activation.** :class:`Activation` holds σ and what jaxsym knows of it — a closed-form κ, whether
it is positively homogeneous (a rescaling symmetry of networks, and the Gaussian closed form for every
rotation-invariant input law), closed-form derivatives, a fast descent gradient — and :data:`ACTIVATIONS`
registers each once; every module asks the record, never the name. Adding an activation is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.landscape import model

Array = jax.Array

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


LEAKY_SLOPE = 0.1  # α of the leaky ReLU


def kappa_leaky_relu(A: Array, B: Array, alpha: float = LEAKY_SLOPE) -> Array:
    """Closed form for ``σ(z) = relu(z) − α relu(−z)``: ``κ = (1+α²) K(a, b) − 2α K(a, −b)``, with the arc-cosine
    kernel written smooth up to alignment (:func:`jaxsym.landscape.model.kernel_from_inner`), so that its
    derivatives are finite at ``a = ±b`` (the diagonal of ``κ(W, W)``): autodiff gives the gradient and Hessian."""
    na = jnp.sqrt(jnp.sum(A * A, axis=1))[:, None]
    nb = jnp.sqrt(jnp.sum(B * B, axis=1))[None, :]
    g = A @ B.T
    return (1 + alpha**2) * model.kernel_from_inner(na, nb, g) - 2 * alpha * model.kernel_from_inner(na, nb, -g)


def _kappa_relu(A: Array, B: Array) -> Array:
    return model.kernel_matrix(model.geometry(A, B, same=A is B))


def _kappa(activation: str | Callable[[Array], Array], A: Array, B: Array, n: int) -> Array:
    act = ACTIVATIONS[activation] if isinstance(activation, str) else None
    if act is not None and act.kappa is not None:
        return act.kappa(A, B)
    return kappa_matrix(act.sigma if act is not None else activation, A, B, n=n)


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
    exact = ACTIVATIONS[activation].exact if isinstance(activation, str) else None
    if exact is not None:
        return exact.loss(W, V)
    kww = _kappa(activation, W, W, n)
    kwv = _kappa(activation, W, V, n)
    kvv = _kappa(activation, V, V, n)
    return 0.5 * jnp.sum(kww) - jnp.sum(kwv) + 0.5 * jnp.sum(kvv)


class Objective(NamedTuple):
    """The loss of one setting as three single-example functions of ``(W, V)``: ``loss``, ``grad`` (k, d) and
    ``hessian`` (k·d, k·d). The certificate and spectra take one; the ReLU/isotropic one is closed form.
    ``key`` is what it is built from, ``(activation, input_corr)``: the key of its stored programs
    (:mod:`jaxsym.numerics.programs`)."""

    loss: Callable[[Array, Array], Array]
    grad: Callable[[Array, Array], Array]
    hessian: Callable[[Array, Array], Array]
    key: tuple[str, float] = ("relu", 0.0)


RELU = Objective(model.loss, model.grad, model.hessian)


def _relu_train(V: Array) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    """ReLU's loss and gradient as descent computes them: Gram-matrix angles (:func:`jaxsym.landscape.model.loss`
    with ``accurate=False``) and :func:`jaxsym.landscape.model.make_train_grad`."""
    return (lambda W: model.loss(W, V, accurate=False)), model.make_train_grad(V)


class Activation(NamedTuple):
    """An activation σ and what jaxsym knows of it (module docstring).

    Attributes:
      name: the name sweeps use (``[train] activation``).
      sigma: σ, vectorised.
      kappa: closed form of ``κ(a_i, b_j) = E[σ(a_i·z) σ(b_j·z)]``, z ~ N(0, I), as ``(A, B) -> (n_a, n_b)``;
        None: 2-d Gauss–Hermite quadrature (:func:`kappa_matrix`).
      homogeneous: ``σ(cz) = c σ(z)`` for c > 0: networks have a rescaling symmetry
        (:func:`jaxsym.landscape.networks.canonical`) and every rotation-invariant input law has the Gaussian
        closed form (:func:`jaxsym.landscape.distributions.closed_form_scale`).
      exact: closed-form loss, gradient and Hessian for isotropic Gaussian inputs (else autodiff of the loss).
      train: ``V ↦ (W ↦ F(W), W ↦ ∇F(W))``, a faster loss and gradient for the descent engine, exact to the
        training dtype's rounding (else autodiff of the loss).
    """

    name: str
    sigma: Callable[[Array], Array]
    kappa: Callable[[Array, Array], Array] | None = None
    homogeneous: bool = False
    exact: Objective | None = None
    train: Callable[[Array], tuple[Callable[[Array], Array], Callable[[Array], Array]]] | None = None


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("relu", jax.nn.relu, _kappa_relu, homogeneous=True, exact=RELU, train=_relu_train),
    Activation("erf", jax.scipy.special.erf, kappa_erf),
    Activation("softplus", jax.nn.softplus),
    Activation("tanh", jnp.tanh),
    Activation("sigmoid", jax.nn.sigmoid),
    Activation("gelu", lambda z: jax.nn.gelu(z, approximate=False)),
    Activation("leaky_relu", lambda z: jax.nn.leaky_relu(z, LEAKY_SLOPE), kappa_leaky_relu, homogeneous=True),
)}


def exchangeable_cov(d: int, rho: float) -> np.ndarray:
    """``Σ = (1 − ρ) I + ρ 11ᵀ``: correlated inputs whose law is invariant under every coordinate permutation
    (so the symmetry group of the problem is unchanged); positive definite for −1/(d−1) < ρ < 1."""
    return (1 - rho) * np.eye(d) + rho * np.ones((d, d))


def input_factor(d: int, input_corr: float, dtype: jnp.dtype) -> Array | None:
    """``L`` with ``L Lᵀ = Σ`` of :func:`exchangeable_cov`, or None for isotropic inputs."""
    if input_corr == 0.0:
        return None
    return jnp.linalg.cholesky(jnp.asarray(exchangeable_cov(d, input_corr), dtype))


def objective(activation: str = "relu", input_corr: float = 0.0) -> Objective:
    """The :class:`Objective` of an activation and exchangeable input correlation ``input_corr``.

    An activation with closed-form derivatives (ReLU: :mod:`jaxsym.landscape.model`) uses them, through the
    whitening map ``W ↦ W L`` for correlated inputs; every other setting differentiates :func:`loss` with JAX.
    """
    act = ACTIVATIONS[activation]
    if act.exact is not None and input_corr == 0.0:
        return act.exact

    def f(W: Array, V: Array) -> Array:
        L = input_factor(W.shape[1], input_corr, W.dtype)
        return loss(W, V, activation, sigma=None if L is None else L @ L.T)

    if act.exact is None:
        def g(W: Array, V: Array) -> Array:
            return jax.grad(f)(W, V)

        def h(W: Array, V: Array) -> Array:
            k, d = W.shape
            return jax.hessian(f)(W, V).reshape(k * d, k * d)

        return Objective(f, g, h, (activation, float(input_corr)))
    exact = act.exact

    def g(W: Array, V: Array) -> Array:  # chain rule through W L
        L = input_factor(W.shape[1], input_corr, W.dtype)
        return exact.grad(W @ L, V.astype(W.dtype) @ L) @ L.T

    def h(W: Array, V: Array) -> Array:  # ∂²F/∂W_ia∂W_jb = Σ_ce H'_ic,je L_ac L_be
        k, d = W.shape
        L = input_factor(d, input_corr, W.dtype)
        H = exact.hessian(W @ L, V.astype(W.dtype) @ L).reshape(k, d, k, d)
        return jnp.einsum("icje,ac,be->iajb", H, L, L).reshape(k * d, k * d)

    return Objective(f, g, h, (activation, float(input_corr)))
