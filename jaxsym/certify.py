"""Float64 polish of training end points and their certificate.

**Polish.** Float32 gradient descent stalls near ‖∇F‖ ≈ 1e-5. We then solve ``∇F(W) = 0`` in float64 by
Levenberg–Marquardt on the residual ``g = ∇F`` with Jacobian ``H = ∇²F`` (:mod:`jaxsym.solvers`):

    W ← W − (H² + μ I)⁻¹ H g,      accepted when ‖g‖ decreases (μ ← μ/10), else μ ← 10 μ.

Near a non-degenerate critical point μ → 0 and this is Newton's method, quadratically convergent
whatever the signature of H (minima and saddles alike); far from one it is a damped descent on ½‖g‖².
Each iteration costs one Hessian and one (kd × kd) solve.

**Certificate** (thresholds in :class:`jaxsym.config.CertifyConfig`, stored next to the results):

    diverged       non-finite training or polish
    global         F ≤ τ_L
    not_converged  ‖∇F‖ > τ_g after the polish (or training ‖∇F‖ > polish_from: not polished)
    saddle         λ_min(H) ≤ −τ_H
    degenerate     |λ_min(H)| < τ_H
    spurious       λ_min(H) ≥ τ_H  (a strict local minimum with F > τ_L)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from jaxsym.activations import RELU, Objective
from jaxsym.config import CertifyConfig
from jaxsym.solvers import levenberg_marquardt

Array = jax.Array

STATUSES = ("global", "spurious", "saddle", "degenerate", "not_converged", "diverged")
GLOBAL, SPURIOUS, SADDLE, DEGENERATE, NOT_CONVERGED, DIVERGED = range(len(STATUSES))


class Certificate(NamedTuple):
    """Polished point and its certificate (add a leading batch axis under vmap).

    Attributes:
      W: (k, d) float64 polished weights (the input when not polished).
      loss, grad_norm: () float64 at W.
      hess_min, hess_max: () float64 extreme Hessian eigenvalues at W (NaN when not computed).
      polish_iters: () int32 Levenberg–Marquardt iterations used.
      shift: () ‖W − W_train‖, how far the polish moved the point.
      status: () int32 index into :data:`STATUSES`.
    """

    W: Array
    loss: Array
    grad_norm: Array
    hess_min: Array
    hess_max: Array
    polish_iters: Array
    shift: Array
    status: Array


def polish(W: Array, V: Array, *, iters: int | Array, tol: float, obj: Objective = RELU) -> tuple[Array, Array]:
    """Levenberg–Marquardt solve of ``∇F(W) = 0`` from ``W`` (k, d) (:func:`jaxsym.solvers.levenberg_marquardt`);
    returns ``(W*, iterations)``.

    Works in the dtype of ``W`` (call it with float64). Stops at ``‖∇F‖ ≤ tol``, after ``iters``
    iterations, or when the damping μ exceeds 1e8 (no further progress possible).
    """
    s = levenberg_marquardt(lambda x: obj.grad(x, V), lambda x: obj.hessian(x, V), W, iters=iters, tol=tol)
    return s.x, s.it


class Thresholds(Protocol):
    """What :func:`classify` reads: :class:`~jaxsym.config.CertifyConfig`, or per-point margins (arrays)."""

    loss_tol: Any
    grad_tol: Any
    hess_tol: Any


def classify(loss: Array, grad_norm: Array, hess_min: Array, diverged: Array, tol: Thresholds,
             xp: Any = jnp) -> Array:
    """Status index (int32) from the certificate quantities; works elementwise on batches.

    The one status rule of the project (module docstring), in precedence order: ``diverged`` (non-finite),
    ``global`` (F ≤ τ_L), ``not_converged`` (‖∇F‖ > τ_g), then by λ_min: ``spurious`` (≥ τ_H), ``saddle``
    (≤ −τ_H), else ``degenerate`` (also when λ_min is NaN). The empirical certificate passes its margins
    widened by standard errors as ``tol``; ``xp`` is ``jax.numpy`` or ``numpy``.
    """
    status = xp.where(hess_min >= tol.hess_tol, SPURIOUS, xp.where(hess_min <= -tol.hess_tol, SADDLE, DEGENERATE))
    status = xp.where(grad_norm > tol.grad_tol, NOT_CONVERGED, status)
    status = xp.where(loss <= tol.loss_tol, GLOBAL, status)
    bad = diverged | ~xp.isfinite(loss) | ~xp.isfinite(grad_norm)
    return xp.where(bad, DIVERGED, status).astype(xp.int32)


def make_certify(cfg: CertifyConfig, V: Array, obj: Objective = RELU) -> Callable[[Array, Array, Array], Certificate]:
    """Return ``certify(W_train, train_grad_norm, diverged) -> Certificate`` for one run (float64).

    Needs ``jax_enable_x64``. Runs whose training gradient is above ``cfg.polish_from`` (or that
    diverged) are not polished and are ``not_converged`` (``diverged``).
    """
    V = jnp.asarray(V, jnp.float64)

    def certify(W_train: Array, train_grad_norm: Array, diverged: Array) -> Certificate:
        W0 = W_train.astype(jnp.float64)
        eligible = ~diverged & (train_grad_norm <= cfg.polish_from) & jnp.all(jnp.isfinite(W0))
        W0 = jnp.where(jnp.all(jnp.isfinite(W0)), W0, 0.0)
        # not eligible: zero iterations, the point is left as it is
        W, iters = polish(W0, V, iters=jnp.where(eligible, cfg.polish_iters, 0), tol=cfg.grad_tol / 100, obj=obj)
        f, g = obj.loss(W, V), obj.grad(W, V)
        gn = jnp.linalg.norm(g)
        eig = jnp.linalg.eigvalsh(obj.hessian(W, V))
        hmin = jnp.where(eligible, eig[0], jnp.nan)
        hmax = jnp.where(eligible, eig[-1], jnp.nan)
        status = classify(f, gn, hmin, diverged, cfg)
        status = jnp.where(eligible | (status == DIVERGED), status, NOT_CONVERGED)
        return Certificate(W, f, gn, hmin, hmax, iters, jnp.linalg.norm(W - W0), status)

    return certify


def make_certify_batch(cfg: CertifyConfig, V: Array, obj: Objective = RELU
                       ) -> Callable[[Array, Array, Array], Certificate]:
    """Jitted, vmapped :func:`make_certify` over a leading run axis."""
    return jax.jit(jax.vmap(make_certify(cfg, V, obj)))
