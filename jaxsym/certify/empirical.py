"""The empirical certificate of a sampled objective's end points, with error bars.

For a network ``f_θ``, teacher ``f_V`` and inputs ``x ~ P`` (a :class:`jaxsym.engine.sgd.Problem`), with
``F̂_S(θ) = ½ mean_{x ∈ S} (f_θ(x) − f_V(x))²``:

**Empirical certificate** on held-out samples ``S`` split into ``B`` equal blocks ``S_b``:

- loss and gradient: the mean over blocks, with standard errors ``se = std_b / √B`` (per parameter, and
  ``‖se‖ = √Σ_p se_p²`` for the norm); a point is *stationary* when ``‖∇F̂‖ ≤ τ_g + 2‖se‖``;
- Hessian: ``H_b[:, p] = (∇F̂_b(θ + h e_p) − ∇F̂_b(θ − h e_p)) / 2h`` per block (central differences of the
  sampled gradient, which for ReLU is only piecewise smooth: the step ``h`` averages the kinks, with an O(h²)
  bias on the population Hessian), ``H = mean_b H_b``; the error of ``λ_min`` is the jackknife over blocks,
  ``se² = (B−1)/B Σ_b (λ_min(H_{−b}) − mean)²`` with ``H_{−b} = (B H − H_b)/(B − 1)``;
- directions along which F is constant by symmetry (ReLU rescalings, :func:`jaxsym.networks.scaling_tangents`)
  are projected out before the eigenvalues are taken, so they do not read as degeneracy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxsym.engine.sgd import Problem
from jaxsym.landscape.networks import Trainable

Array = jax.Array


class Evaluation(NamedTuple):
    """Held-out loss and gradient of a run, with standard errors from batch means."""

    loss: Array
    loss_se: Array
    grad_norm: Array
    grad_se: Array


def _blocks(X: Array, y: Array, blocks: int) -> tuple[Array, Array]:
    n = X.shape[0] // blocks
    return X[:n * blocks].reshape(blocks, n, -1), y[:n * blocks].reshape(blocks, n)


def evaluate(p: Problem, params: Trainable, X: Array, y: Array, blocks: int) -> Evaluation:
    """:class:`Evaluation` of one point on the held-out sample ``(X, y)`` split into ``blocks`` blocks."""
    Xb, yb = _blocks(X, y, blocks)
    losses, grads = jax.vmap(jax.value_and_grad(p.loss), in_axes=(None, 0, 0))(params, Xb, yb)
    G = jax.vmap(lambda g: ravel_pytree(g)[0])(grads)  # (blocks, P)
    se = jnp.std(G, axis=0, ddof=1) / jnp.sqrt(blocks)
    return Evaluation(jnp.mean(losses), jnp.std(losses, ddof=1) / jnp.sqrt(blocks),
                      jnp.linalg.norm(jnp.mean(G, axis=0)), jnp.linalg.norm(se))


def make_evaluate_batch(p: Problem, X: Array, y: Array, blocks: int, batch_size: int = 8
                        ) -> Callable[[Trainable], Evaluation]:
    """Jitted :func:`evaluate` over a leading run axis, ``batch_size`` runs at a time (memory ∝ batch_size)."""
    return jax.jit(lambda params: jax.lax.map(lambda q: evaluate(p, q, X, y, blocks), params,
                                              batch_size=batch_size))


class PointCertificate(NamedTuple):
    """Empirical certificate of one point (float64 numpy).

    Attributes:
      loss, loss_se, grad_norm, grad_se: held-out values and standard errors.
      eigs: eigenvalues of the Hessian on the complement of the symmetry null directions, ascending.
      hess_min_se: jackknife standard error of ``eigs[0]``.
      n_null: number of directions projected out.
    """

    loss: float
    loss_se: float
    grad_norm: float
    grad_se: float
    eigs: np.ndarray
    hess_min_se: float
    n_null: int


def complement_basis(tangents: np.ndarray, P: int) -> np.ndarray:
    """Orthonormal basis (P, P − r) of the orthogonal complement of the span of ``tangents`` (n, P)."""
    if tangents.shape[0] == 0:
        return np.eye(P)
    _, s, vt = np.linalg.svd(tangents, full_matrices=True)
    r = int(np.sum(s > 1e-10 * max(float(s[0]), 1e-300)))
    return vt[r:].T


def fd_hessian_blocks(p: Problem, params: Trainable, X: Array, y: Array, blocks: int, h: float,
                      batch_size: int = 4) -> np.ndarray:
    """Per-block central-difference Hessians (blocks, P, P) of the sampled loss at ``params`` (see module
    docstring); computed ``batch_size`` directions at a time to bound memory."""
    flat, unravel = ravel_pytree(params)
    Xb, yb = _blocks(X, y, blocks)
    P = flat.size

    def block_grads(theta: Array) -> Array:  # (blocks, P)
        return jax.vmap(lambda Xi, yi: ravel_pytree(jax.grad(p.loss)(unravel(theta), Xi, yi))[0])(Xb, yb)

    def column(e: Array) -> Array:
        return (block_grads(flat + h * e) - block_grads(flat - h * e)) / (2 * h)

    cols = jax.jit(lambda E: jax.lax.map(column, E, batch_size=batch_size))(jnp.eye(P, dtype=flat.dtype))
    H = np.asarray(jnp.transpose(cols, (1, 2, 0)))  # (blocks, P, P): H_b[:, p] = column p
    return 0.5 * (H + np.transpose(H, (0, 2, 1)))


def certify_point(p: Problem, params: Trainable, X: Array, y: Array, *, eval_blocks: int, hess_blocks: int,
                  fd_step: float, tangents: np.ndarray, hessian: bool = True) -> PointCertificate:
    """Held-out loss, gradient and projected Hessian spectrum of one point, with error bars (float64 if
    ``params`` and ``X`` are float64). ``hessian=False`` skips the Hessian (``eigs = [nan]``)."""
    ev = jax.device_get(evaluate(p, params, X, y, eval_blocks))
    if not hessian:
        return PointCertificate(float(ev.loss), float(ev.loss_se), float(ev.grad_norm), float(ev.grad_se),
                                np.array([np.nan]), float("nan"), 0)
    Hb = fd_hessian_blocks(p, params, X, y, hess_blocks, fd_step)
    B, P, _ = Hb.shape
    C = complement_basis(tangents, P)
    H = Hb.mean(axis=0)
    eigs = np.linalg.eigvalsh(C.T @ H @ C)
    jack = np.array([np.linalg.eigvalsh(C.T @ ((B * H - Hb[b]) / (B - 1)) @ C)[0] for b in range(B)])
    se = float(np.sqrt((B - 1) / B * np.sum((jack - jack.mean()) ** 2)))
    return PointCertificate(float(ev.loss), float(ev.loss_se), float(ev.grad_norm), float(ev.grad_se),
                            eigs, se, P - C.shape[1])
