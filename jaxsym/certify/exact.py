"""Float64 polish of training end points and their certificate.

**Polish.** Float32 gradient descent stalls near ‖∇F‖ ≈ 1e-5. We then solve ``∇F(W) = 0`` in float64 by
Levenberg–Marquardt on the residual ``g = ∇F`` with Jacobian ``H = ∇²F`` (:mod:`jaxsym.numerics.solvers`):

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

import functools
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.config import CertifyConfig
from jaxsym.landscape.activations import RELU, Objective
from jaxsym.numerics import programs
from jaxsym.numerics.solvers import levenberg_marquardt

Array = jax.Array
T = TypeVar("T")

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
    """Levenberg–Marquardt solve of ``∇F(W) = 0`` from ``W`` (k, d)
    (:func:`jaxsym.numerics.solvers.levenberg_marquardt`);
    returns ``(W*, iterations)``.

    Works in the dtype of ``W`` (call it with float64). Stops at ``‖∇F‖ ≤ tol``, after ``iters``
    iterations, or when the damping μ exceeds 1e8 (no further progress possible).
    """
    s = levenberg_marquardt(lambda x: obj.grad(x, V), lambda x: obj.hessian(x, V), W, iters=iters, tol=tol)
    return s.x, s.it


@functools.lru_cache(maxsize=64)
def _point_program(obj: Objective, what: str) -> Callable[..., Array]:
    return programs.jit(getattr(obj, what), name=what, key=obj.key)


def gradient(W: np.ndarray, V: np.ndarray, obj: Objective = RELU) -> np.ndarray:
    """``∇F(W)`` (k, d) float64 on the host: one jitted program per shape, the target an argument (shared by cells
    of one shape, like :func:`jaxsym.symmetry.spectra.hessian_matrix`)."""
    with jax.enable_x64(True):
        return np.asarray(_point_program(obj, "grad")(np.asarray(W, np.float64), np.asarray(V, np.float64)))


def loss_value(W: np.ndarray, V: np.ndarray, obj: Objective = RELU) -> float:
    """``F(W)`` float64 on the host, likewise."""
    with jax.enable_x64(True):
        return float(_point_program(obj, "loss")(np.asarray(W, np.float64), np.asarray(V, np.float64)))


HESSIAN_BLOCK_BYTES = 2**26  # at most this much of Hessians per call of :func:`hessians`
CPU_BLOCK = 8  # points per call of a :func:`per_run` program on a CPU (one at a time inside): little padding


@functools.lru_cache(maxsize=64)
def _hessians_program(obj: Objective) -> Callable[..., Array]:
    return per_run(obj.hessian, name="hessians", key=obj.key, shared=1)


def hessians(Ws: np.ndarray, V: np.ndarray, obj: Objective = RELU) -> np.ndarray:
    """Hessians at the points ``Ws`` (c, k, d): (c, k·d, k·d) float64 on the host, in calls of a fixed number of
    points (:func:`per_run`: on a CPU one point at a time inside a call, so a point's Hessian does not depend on
    the others; as many as :data:`HESSIAN_BLOCK_BYTES` holds, at most 32), the target an argument."""
    Ws = np.asarray(Ws, np.float64)
    V = np.asarray(V, np.float64)
    with jax.enable_x64(True):
        prog = _hessians_program(obj)
        return in_blocks(lambda W: prog(W, V), (Ws,), _hessian_block(Ws))


def _hessian_block(Ws: np.ndarray) -> int:
    """Points per call of a program that holds their Hessians at once (vmapped on an accelerator): as many as
    :data:`HESSIAN_BLOCK_BYTES` holds, at most 32 on an accelerator and :data:`CPU_BLOCK` on a CPU.

    On a CPU a call computes its points one at a time (:func:`per_run`), so a block only spreads the cost of a call
    over its points, and the padding of a partial block is paid in full: with blocks of 32, the per-run path's
    calls for 3 points cost 32 Hessians each (at k = d = 20, 110 ms a call; 22 ms in blocks of 8). A point's
    Hessian has the same bits in blocks of 4, 8 and 32 (tested; in a block of one XLA drops the loop, and they
    differ)."""
    n = Ws.shape[1] * Ws.shape[2]
    most = CPU_BLOCK if jax.default_backend() == "cpu" else 32
    return max(1, min(most, HESSIAN_BLOCK_BYTES // (8 * n * n)))


@functools.lru_cache(maxsize=64)
def _distances_program(obj: Objective) -> Callable[..., Array]:
    def distance(X: Array, H_ref: Array, V: Array) -> Array:
        D = obj.hessian(X, V) - H_ref
        return jnp.sqrt(jnp.sum(D * D))

    return per_run(distance, name="hessian-distances", key=obj.key, shared=2)


def hessian_distances(Xs: np.ndarray, H_ref: np.ndarray, V: np.ndarray, obj: Objective = RELU) -> np.ndarray:
    """``‖H(X_n) − H_ref‖_F`` for the points ``Xs`` (c, k, d) and one reference Hessian ``H_ref`` (k·d, k·d):
    (c,) float64 on the host.

    What the hand-off test per orbit needs of a run's Hessian (:mod:`jaxsym.certify.basins`), computed and reduced
    inside one program: the Hessians never leave it, so a run costs one Hessian's arithmetic, not its copy to the
    host and a second pass there (at k = d = 18 the copy alone was a third of the test's time). Calls of as many
    points as :func:`hessians` takes (the last padded), one point at a time inside a call on a CPU (:func:`per_run`),
    so a point's distance does not depend on the others."""
    Xs = np.asarray(Xs, np.float64)
    V = np.asarray(V, np.float64)
    H_ref = np.asarray(H_ref, np.float64)
    with jax.enable_x64(True):
        prog = _distances_program(obj)
        return in_blocks(lambda X: prog(X, H_ref, V), (Xs,), _hessian_block(Xs))


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


class Polished(NamedTuple):
    """A run's end point after the float64 polish (add a leading batch axis when batched).

    Attributes:
      W: (k, d) float64 polished weights (the input when not polished).
      loss, grad_norm: () float64 at W.
      polish_iters: () int32 iterations used.
      shift: () ‖W − W_train‖, how far the polish moved the point.
      eligible: () bool, the run was polished (finite, training ‖∇F‖ ≤ polish_from).
    """

    W: Array
    loss: Array
    grad_norm: Array
    polish_iters: Array
    shift: Array
    eligible: Array


def make_polish(cfg: CertifyConfig, V: Array, obj: Objective = RELU) -> Callable[[Array, Array, Array], Polished]:
    """Return ``polish_run(W_train, train_grad_norm, diverged) -> Polished`` for one run (float64, needs x64).

    Runs whose training gradient is above ``cfg.polish_from`` (or that diverged) are left as they are."""
    V = np.asarray(V, np.float64)

    def polish_run(W_train: Array, train_grad_norm: Array, diverged: Array) -> Polished:
        W0 = W_train.astype(jnp.float64)
        eligible = ~diverged & (train_grad_norm <= cfg.polish_from) & jnp.all(jnp.isfinite(W0))
        W0 = jnp.where(jnp.all(jnp.isfinite(W0)), W0, 0.0)
        W, iters = polish(W0, V, iters=jnp.where(eligible, cfg.polish_iters, 0), tol=cfg.grad_tol / 100, obj=obj)
        return Polished(W, obj.loss(W, V), jnp.linalg.norm(obj.grad(W, V)), iters, jnp.linalg.norm(W - W0), eligible)

    return polish_run


def make_certify(cfg: CertifyConfig, V: Array, obj: Objective = RELU) -> Callable[[Array, Array, Array], Certificate]:
    """Return ``certify(W_train, train_grad_norm, diverged) -> Certificate`` for one run (float64, needs x64):
    :func:`make_polish`, then the Hessian's extreme eigenvalues and :func:`classify`. Sweeps polish every run
    but take eigenvalues once per distinct point (:mod:`jaxsym.sweep.closed_form`); this is the one-run form."""
    V = np.asarray(V, np.float64)
    polish_run = make_polish(cfg, V, obj)

    def certify(W_train: Array, train_grad_norm: Array, diverged: Array) -> Certificate:
        p = polish_run(W_train, train_grad_norm, diverged)
        eig = jnp.linalg.eigvalsh(obj.hessian(p.W, V))
        hmin = jnp.where(p.eligible, eig[0], jnp.nan)
        hmax = jnp.where(p.eligible, eig[-1], jnp.nan)
        status = classify(p.loss, p.grad_norm, hmin, diverged, cfg)
        status = jnp.where(p.eligible | (status == DIVERGED), status, NOT_CONVERGED)
        return Certificate(p.W, p.loss, p.grad_norm, hmin, hmax, p.polish_iters, p.shift, status)

    return certify


def make_certify_batch(cfg: CertifyConfig, V: Array, obj: Objective = RELU
                       ) -> Callable[[Array, Array, Array], Certificate]:
    """Jitted :func:`make_certify` over a leading run axis (one run at a time: see :func:`per_run`)."""
    return per_run(make_certify(cfg, V, obj))


def per_run(fn: Callable[..., T], *, name: str | None = None, key: Any = None, shared: int = 0) -> Callable[..., T]:
    """``fn`` over a leading run axis, jitted; its last ``shared`` arguments are the same for every run (not
    batched). On a CPU one run at a time (``lax.map``): each run's float64 numbers are then the same whatever batch
    it is in (vmapped linear algebra differs in the last bits with the batch size), so results do not depend on
    chunking, and there it is as fast. On an accelerator vmapped: one run at a time was the bound of a GPU sweep
    (``eigh`` of 100×100 float64 matrices 130× faster batched on an H100), and there the float32 descent's last
    bits already depend on the batch (``docs/benchmarks.md``)."""
    def split(args: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        return args[:len(args) - shared], args[len(args) - shared:]

    def mapped(*args: Any) -> T:
        runs, common = split(args)
        return jax.lax.map(lambda a: fn(*a, *common), runs)

    def vmapped(*args: Any) -> T:
        runs, common = split(args)
        return jax.vmap(lambda *a: fn(*a, *common))(*runs)

    batched = mapped if jax.default_backend() == "cpu" else vmapped
    return jax.jit(batched) if name is None else programs.jit(batched, name=name, key=key)


def in_blocks(fn: Callable[..., T], args: tuple[np.ndarray, ...], block: int) -> T:
    """Apply a batched ``fn`` to host arrays in blocks of exactly ``block`` runs (the last padded by repeating
    its last run), so that one compiled program serves every size; returns host arrays of the input length."""
    n = len(args[0])
    outs = []
    for start in range(0, n, block):
        part = [a[start:start + block] for a in args]
        m = len(part[0])
        part = [np.concatenate([x, np.repeat(x[-1:], block - m, axis=0)]) for x in part]
        outs.append(jax.tree.map(lambda x, m=m: np.asarray(x)[:m], jax.device_get(fn(*part))))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)
