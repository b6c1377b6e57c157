"""One solve of the restricted problem: Levenberg–Marquardt on ``∇_z F = 0`` in a fixed-point space.

The iteration is the project's one Newton-type solver (:func:`jaxsym.numerics.solvers.levenberg_marquardt`) on
the restricted loss :func:`jaxsym.fixedpoints.space.loss`, over the free parameters only, with steps accepted
and stopping decided by the *full-space* gradient norm ``‖∇F(Ez)‖`` (:func:`jaxsym.fixedpoints.space.full_norm`),
the number a certificate of the full problem needs. Every use (the atlas, the scan over k, the students wider
than the teacher, continuation in k, d or n) calls :func:`solve` or, for many starts at once, :func:`solve_many`,
and gets a :class:`Solution`.

**When a solve has converged.** ``‖∇F(Ez)‖ ≤`` :func:`grad_tol_at` ``(k)``: 1e-12, or the rounding floor of the
restricted gradient once that is larger (from k ≈ 17 on).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.fixedpoints.space import Space, counts, free_mask, full_norm, hessian, loss
from jaxsym.numerics.solvers import levenberg_marquardt

Array = jax.Array

SCAN_BATCH = 256  # solves per vmapped call of solve_many (one compilation per layout)


def grad_tol_at(k: float, tol: float = 1e-12) -> float:
    """The full-space ‖∇F‖ a float64 solve can reach at k: ``tol``, or 64·ε·k^{3/2} once that is larger.

    The restricted gradient sums ≈ k² terms of order one for the parameters of the growing block, so its
    rounding error is ≈ ε·k²; mapped to the full space (divided by the parameters' counts ≈ k and k², summed
    over ≈ k entries) that is ≈ ε·k^{3/2}: 64·ε·k^{3/2} passes 1e-12 at k ≈ 17, is 1.4e-11 at k = 100 and 4.5e-7
    at k = 10⁵."""
    return max(tol, 64 * float(np.finfo(np.float64).eps) * k ** 1.5)


class Solution(NamedTuple):
    """A solve's end: ``z`` the parameters (frozen ones zero), ``grad_norm`` the full-space ‖∇F(Ez)‖ (float64),
    ``converged`` = ``grad_norm ≤ tol``. From :func:`solve_many`, each field has a leading axis of solves."""

    z: np.ndarray
    grad_norm: float | np.ndarray
    converged: bool | np.ndarray


def _newton(z0: Array, args: tuple[Array, ...], free: Array, tol: Array | float, iters: int
            ) -> tuple[Array, Array]:
    """Levenberg–Marquardt on ``∇_z loss(z, *args) = 0`` over the ``free`` parameters, steps accepted by the
    full-space gradient norm: ``(z, ‖∇F(Ez)‖)``."""
    s = levenberg_marquardt(lambda z: jax.grad(loss)(z, *args), lambda z: hessian(z, *args), z0,
                            iters=iters, tol=tol, norm=lambda z, g: full_norm(g, counts(*args)), free=free, mu0=1e-8,
                            mu_min=1e-16, mu_max=1.5e10)
    return s.x, s.gn


_newton_jit = jax.jit(_newton, static_argnames="iters")


def solve(space: Space, z0: np.ndarray, *, tol: float | None = None, iters: int = 60) -> Solution:
    """Solve ``∇_z F = 0`` in ``space`` from ``z0`` (float64; frozen parameters set to zero); ``tol`` defaults
    to :func:`grad_tol_at` ``(space.k)``."""
    tol = grad_tol_at(space.k) if tol is None else tol
    free = space.free
    with jax.enable_x64(True):
        z = jnp.asarray(np.where(free, np.asarray(z0, np.float64), 0.0))
        z, gn = _newton_jit(z, space.args(), jnp.asarray(free), tol, iters)
        gn = float(gn)
        return Solution(np.asarray(z), gn, gn <= tol)


class Solved(NamedTuple):
    """:func:`solve_many`'s solves, one row each: the :class:`Solution` fields, ``loss``, and ``trivial_neg``: the
    negative eigenvalues (below −1e-6) of the Hessian on the space solved in (the trivial isotypic block of that
    space; any one is a descent direction of F, so > 0 means a saddle)."""

    z: np.ndarray
    grad_norm: np.ndarray
    converged: np.ndarray
    loss: np.ndarray
    trivial_neg: np.ndarray


@functools.cache
def _newton_batch(iters: int, wide: bool) -> Callable[..., tuple[Array, ...]]:
    """``(z0 (n, m), p (n, r), extra (n,), free (n, m), tol) -> (z, grad_norm, loss, trivial_neg)``: the solve
    vmapped over starts and block sizes; the Hessian ``A`` of the restricted loss in the metric
    ``G = diag(counts)`` (eigenvalues of ``G^{-1/2} A G^{-1/2}`` on the free parameters)."""

    def one(z0: Array, p: Array, n: Array, free: Array, tol: Array) -> tuple[Array, ...]:
        args = (p, n) if wide else (p,)
        z, gn = _newton(z0, args, free, tol, iters)
        s = 1.0 / jnp.sqrt(jnp.where(free, counts(*args), 1.0))
        A = jnp.where(free[:, None] & free[None, :], hessian(z, *args) * s[:, None] * s[None, :],
                      jnp.eye(z.size))
        neg = jnp.sum(jnp.linalg.eigvalsh((A + A.T) / 2) < -1e-6)
        return z, gn, loss(z, *args), neg

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, None)))


def _solve_batches(p: np.ndarray, n: np.ndarray | None, z0: np.ndarray, tol: float, iters: int
                   ) -> tuple[np.ndarray, ...]:
    extras = [None] * len(p) if n is None else list(n)
    free = np.stack([free_mask(q, m) for q, m in zip(p, extras, strict=True)])
    z0 = np.where(free, z0, 0.0)
    fn = _newton_batch(iters, n is not None)
    nn = np.zeros(len(p)) if n is None else n
    total = len(p)

    def batch(lo: int) -> tuple[np.ndarray, ...]:
        idx = np.minimum(np.arange(lo, lo + SCAN_BATCH), total - 1)  # the last batch padded with its last row
        with jax.enable_x64(True):
            out = fn(jnp.asarray(z0[idx]), jnp.asarray(p[idx]), jnp.asarray(nn[idx], jnp.float64),
                     jnp.asarray(free[idx]), jnp.float64(tol))
            return tuple(np.asarray(o)[:min(SCAN_BATCH, total - lo)] for o in out)

    outs = [batch(lo) for lo in range(0, total, SCAN_BATCH)]
    return tuple(np.concatenate(a) for a in zip(*outs, strict=True))


def solve_many(spaces: Sequence[Space], z0: np.ndarray, *, tol: float, iters: int = 60, restarts: int = 2,
               near: float = 1e-3) -> Solved:
    """:func:`solve` for each ``(spaces[i], z0[i])`` (all of one layout: the same r, all with extra neurons or
    none; ``z0`` (n, size)), float64, in vmapped batches of :data:`SCAN_BATCH`, each converged when its
    ‖∇F(Ez)‖ ≤ ``tol``.

    Levenberg–Marquardt near a saddle can stall with its damping at the maximum; the solves that end above
    ``tol`` but below ``near`` are restarted from where they stopped (damping reset) up to ``restarts`` times."""
    wide = {s.wide for s in spaces}
    if len({s.r for s in spaces}) != 1 or len(wide) != 1:
        raise ValueError("solve_many takes spaces of one layout (the same number of blocks, all wide or none)")
    p = np.asarray([s.p for s in spaces], np.float64)
    n = np.asarray([s.extra for s in spaces], np.float64) if wide == {True} else None
    out = list(_solve_batches(p, n, np.asarray(z0, np.float64), tol, iters))
    for _ in range(restarts):
        again = np.flatnonzero((out[1] > tol) & (out[1] < near))
        if not len(again):
            break
        redo = _solve_batches(p[again], None if n is None else n[again], out[0][again], tol, iters)
        for full, part in zip(out, redo, strict=True):
            full[again] = part
    z, gn, f, neg = out
    return Solved(z, gn, gn <= tol, f, neg)
