"""Sampled objectives: SGD on samples of any input law, and an empirical certificate with error bars.

For a network ``f_θ`` (:mod:`jaxsym.networks`), teacher ``f_V`` and inputs ``x ~ P`` (:mod:`jaxsym.distributions`)

    F(θ) = ½ E_P[(f_θ(x) − f_V(x))²],      F̂_S(θ) = ½ mean_{x ∈ S} (f_θ(x) − f_V(x))².

**Training** (float32, one pure single-run engine vmapped over a chunk, like :mod:`jaxsym.train`): step ``t`` of
run ``r`` uses the batch drawn from ``fold_in(key(seed, d, k, r), t)`` — fresh samples (``online``: unbiased
gradients of F) or a minibatch of one fixed training set per cell (``fixed``: gradients of F̂_train). Step size
constant, then linearly decayed; the run's result is the Polyak–Ruppert average of its last iterates. A step
depends only on ``(seed, d, k, r, t)``, so ``advance(advance(s, a), b) == advance(s, b)`` and chunks can be
checkpointed and resumed mid-run, bit for bit.

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
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxsym import networks
from jaxsym.config import ConfigError, SampledConfig, TrainConfig
from jaxsym.distributions import Sampler, closed_form_scale, make_sampler
from jaxsym.engine import Engine
from jaxsym.networks import Net, Trainable
from jaxsym.parallel import invariant_jit
from jaxsym.train import cell_key, make_optimizer, run_key

Array = jax.Array

# data streams of a cell: folded into the seed's key *before* d and k, with values ≥ 2³¹ that no d can take
TRAIN_SET, EVAL_SET, HESS_SET = 2**31, 2**31 + 1, 2**31 + 2


@dataclass(frozen=True)
class Problem:
    """One cell of a sampled sweep: sizes, architecture, law, teacher and (``fixed`` mode) training set."""

    d: int
    k: int
    hidden_layers: int
    train_output: bool
    activation: str
    sampler: Sampler
    teacher: Net
    X_train: Array | None = None
    y_train: Array | None = None

    def labels(self, X: Array) -> Array:
        """Teacher outputs ``f_V(X)`` (n,)."""
        teacher = jax.tree.map(lambda t: t.astype(X.dtype), self.teacher)
        return networks.forward(teacher, X, self.activation)

    def loss(self, params: Trainable, X: Array, y: Array) -> Array:
        """``F̂`` on the sample ``(X, y)``."""
        return networks.sample_loss(params, X, y, self.k, self.activation)

    def draw(self, stream: int, n: int, seed: int, dtype: jnp.dtype = jnp.float32) -> tuple[Array, Array]:
        """A cell-level sample of ``n`` inputs and labels from one of the data streams."""
        key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), stream), self.d),
                                 self.k)
        X = jnp.asarray(self.sampler(key, n, self.d, jnp.float32), dtype)
        return X, self.labels(X)


def has_closed_form(scfg: SampledConfig, activation: str) -> bool:
    """Whether the population loss of this setting is the Gaussian closed form of :mod:`jaxsym.model`: online
    SGD of the two-layer ReLU student with fixed output weights on a rotation-invariant law with ``E x xᵀ = I``
    (``gaussian``, ``sphere``, ``student_t``; :func:`jaxsym.distributions.closed_form_scale`)."""
    return (scfg.hidden_layers == 1 and not scfg.train_output and scfg.mode == "online"
            and closed_form_scale(scfg.distribution, activation) == 1.0)


def make_problem(scfg: SampledConfig, d: int, k: int, m: int, activation: str, seed: int) -> Problem:
    """The :class:`Problem` of a cell (teacher of width ``m``; draws the fixed training set if needed)."""
    try:
        sampler = make_sampler(scfg.distribution, shift=scfg.shift, sampler=scfg.sampler)
    except ValueError as e:
        raise ConfigError(f"sampled.sampler: {e}") from None
    p = Problem(d, k, scfg.hidden_layers, scfg.train_output, activation, sampler,
                networks.teacher(d, m, scfg.hidden_layers))
    try:
        got = sampler(jax.random.key(0), 4, d, jnp.float32)
    except Exception as e:  # a user function: any failure is a configuration error
        raise ConfigError(f"sampled.sampler: the sampler of {scfg.distribution!r} fails on a test call "
                          f"sample(key, n=4, d={d}, float32): {type(e).__name__}: {e}") from None
    if getattr(got, "shape", None) != (4, d):
        raise ConfigError(f"sampled.sampler: the sampler of {scfg.distribution!r} returned shape "
                          f"{getattr(got, 'shape', None)} for n=4, d={d}; it must return (n, d)")
    if scfg.mode == "fixed":
        X_train, y_train = p.draw(TRAIN_SET, scfg.n_train, seed)
        p = Problem(**{**p.__dict__, "X_train": X_train, "y_train": y_train})
    return p


# --------------------------------------------------------------------------------------------------
# Training engine
# --------------------------------------------------------------------------------------------------
class SampledState(NamedTuple):
    """In-flight state of one run (a checkpointable pytree)."""

    step: Array
    params: Trainable
    opt_state: optax.OptState
    avg: Trainable
    finite: Array


class SampledResult(NamedTuple):
    """End of one run: the averaged iterate, steps taken, and whether anything non-finite was met."""

    params: Trainable
    steps: Array
    diverged: Array


def schedule(lr: float, steps: int, scfg: SampledConfig) -> optax.Schedule:
    """Constant ``lr`` for ``decay_from·steps`` steps, then linear to ``final_lr_fraction·lr`` at ``steps``."""
    t0 = int(scfg.decay_from * steps)
    return optax.join_schedules([optax.constant_schedule(lr),
                                 optax.linear_schedule(lr, lr * scfg.final_lr_fraction, max(steps - t0, 1))], [t0])


def make_engine(p: Problem, train: TrainConfig, scfg: SampledConfig, seed: int
                ) -> Engine[tuple[Array, SampledState], SampledResult]:
    """Jitted, vmapped sampled-SGD :class:`~jaxsym.engine.Engine` over a chunk of run indices (module docstring);
    the chunk's state carries its run indices beside the runs' states."""
    steps = train.steps
    opt = make_optimizer(train, schedule(float(train.learning_rate), steps, scfg))
    avg_from = int(scfg.average_from * steps)
    base = cell_key(seed, p.d, p.k)
    B = scfg.batch_size

    def keys(run: Array) -> tuple[Array, Array]:
        k_init, k_data = jax.random.split(run_key(base, run))
        return k_init, k_data

    def batch(k_data: Array, t: Array) -> tuple[Array, Array]:
        kt = jax.random.fold_in(k_data, t)
        if p.X_train is None:
            X = p.sampler(kt, B, p.d, jnp.float32)
            return X, p.labels(X)
        idx = jax.random.randint(kt, (B,), 0, p.X_train.shape[0])
        return p.X_train[idx], p.y_train[idx]

    def init(run: Array) -> SampledState:
        k_init, _ = keys(run)
        params = networks.init(k_init, p.d, p.k, p.hidden_layers, scale=train.init_scale,
                               train_output=p.train_output)
        return SampledState(jnp.int32(0), params, opt.init(params), params, jnp.bool_(True))

    def step(k_data: Array, s: SampledState) -> SampledState:
        X, y = batch(k_data, s.step)
        g = jax.grad(p.loss)(s.params, X, y)
        updates, opt_state = opt.update(g, s.opt_state, s.params)
        params = optax.apply_updates(s.params, updates)
        n = (s.step - avg_from + 1).astype(jnp.float32)
        avg = jax.tree.map(lambda a, x: jnp.where(s.step >= avg_from, a + (x - a) / jnp.maximum(n, 1.0), x),
                           s.avg, params)
        finite = s.finite & jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)]))
        return SampledState(s.step + 1, params, opt_state, avg, finite)

    def advance(run: Array, s: SampledState, until: Array) -> SampledState:
        k_data = keys(run)[1]  # derived once per segment, not once per step
        return jax.lax.while_loop(lambda s: (s.step < jnp.minimum(until, steps)) & s.finite,
                                  lambda s: step(k_data, s), s)

    def running(s: SampledState) -> Array:
        return (s.step < steps) & s.finite

    # the run index travels inside the state's leading axis: a chunk's state is (runs, state)
    def init_b(runs: Array) -> tuple[Array, SampledState]:
        return runs, jax.vmap(init)(runs)

    def advance_b(state: tuple[Array, SampledState], until: Array) -> tuple[Array, SampledState]:
        runs, s = state
        return runs, jax.vmap(advance, in_axes=(0, 0, None))(runs, s, until)

    def finish_b(state: tuple[Array, SampledState]) -> SampledResult:
        _, s = state
        return SampledResult(s.avg, s.step, ~s.finite)

    return Engine(invariant_jit(init_b), invariant_jit(advance_b),  # a run's steps do not depend on the chunk
                  jax.jit(finish_b),  # no arithmetic; also traced inside other programs
                  invariant_jit(lambda state: jnp.sum(jax.vmap(running)(state[1]))))


# --------------------------------------------------------------------------------------------------
# Empirical certificate
# --------------------------------------------------------------------------------------------------
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
