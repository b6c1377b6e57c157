"""Levenberg–Marquardt solve of ``∇F(x) = 0``: the one Newton-type solver of the project.

With ``g = ∇F(x)`` and ``H = ∇²F(x)`` (symmetric), one iteration is

    x ← x − (H² + μ I)⁻¹ H g,      accepted when ‖g‖ decreases (μ ← max(μ/10, μ_min)), else μ ← 10 μ.

Near a non-degenerate critical point μ → 0 and this is Newton's method, quadratically convergent whatever
the signature of H (minima and saddles alike); far from one it is a damped descent on ½‖g‖². It stops at
``‖g‖ ≤ tol``, after ``iters`` iterations, when ``μ ≥ mu_max`` (no further progress possible) or when ‖g‖ is
not finite. Used by the float64 certificate (:mod:`jaxsym.certify.exact`, x = W) and by the restricted problems of
fixed-point spaces (:mod:`jaxsym.fixedpoints.families`, x = the few parameters, some of them frozen by ``free``).

The norm that decides acceptance and stopping may be another one than ‖g‖ (``norm``): a restricted problem
steps with its own gradient but measures the full-space gradient norm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class LMState(NamedTuple):
    """Solver state; ``x`` keeps the caller's shape, ``g`` is ``∇F(x)`` of the same shape."""

    it: Array
    x: Array
    g: Array
    gn: Array
    mu: Array


def levenberg_marquardt(grad: Callable[[Array], Array], hess: Callable[[Array], Array], x0: Array, *,
                        iters: int | Array, tol: float, norm: Callable[[Array, Array], Array] | None = None,
                        free: Array | None = None, mu0: float = 1e-6, mu_min: float = 1e-15,
                        mu_max: float = 1e8) -> LMState:
    """Solve ``grad(x) = 0`` from ``x0`` (any shape; ``hess(x)`` is (n, n) over ``x.ravel()``).

    Args:
      grad, hess: gradient (shape of x) and Hessian (n, n) of the objective.
      x0: start, in the working dtype (call with float64 for a certificate).
      iters: iteration budget (may be traced, e.g. 0 for points that are not to be polished).
      tol: stop when ``norm(x, g) ≤ tol``.
      norm: ``(x, g) -> ‖·‖`` deciding acceptance and stopping (default ``‖g‖``).
      free: boolean mask (shape of x) of the entries that move; the others stay as in ``x0``.
      mu0, mu_min, mu_max: initial, smallest and largest damping.

    Returns the final :class:`LMState` (``it`` = iterations used, ``gn`` = the final norm).
    """
    measure = norm if norm is not None else (lambda x, g: jnp.linalg.norm(g))
    n = x0.size
    eye = jnp.eye(n, dtype=x0.dtype)
    mask = None if free is None else jnp.asarray(free).reshape(-1)
    both = None if mask is None else mask[:, None] & mask[None, :]

    def running(s: LMState) -> Array:
        return (s.it < iters) & (s.gn > tol) & (s.mu < mu_max) & jnp.isfinite(s.gn)

    def step(s: LMState) -> LMState:
        H = hess(s.x)
        g = s.g.reshape(-1)
        if mask is not None:  # frozen entries: identity rows and zero gradient, so their step is zero
            H = jnp.where(both, H, eye)
            g = jnp.where(mask, g, 0.0)
        delta = jnp.linalg.solve(H @ H + s.mu * eye, H @ g)
        x_new = s.x - delta.reshape(s.x.shape)
        g_new = grad(x_new)
        gn_new = measure(x_new, g_new)
        better = jnp.isfinite(gn_new) & (gn_new < s.gn)
        return LMState(
            s.it + 1,
            jnp.where(better, x_new, s.x),
            jnp.where(better, g_new, s.g),
            jnp.where(better, gn_new, s.gn),
            jnp.where(better, jnp.maximum(s.mu / 10, mu_min), s.mu * 10),
        )

    g0 = grad(x0)
    return jax.lax.while_loop(running, step, LMState(jnp.int32(0), x0, g0, measure(x0, g0),
                                                     jnp.asarray(mu0, x0.dtype)))
