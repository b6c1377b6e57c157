"""Training engine: one pure function per run, vmapped over runs and jitted (PureJaxRL style).

``make_train(cfg, V)`` closes over everything static and returns ``train(key) -> RunResult`` for one run;
``make_batch_engine`` (an :class:`jaxsym.engine.interface.Engine`) and ``make_train_batch`` vmap and jit it over the
global run indices of a chunk.
Randomness comes only from ``(seed, d, k, run index)`` through :func:`run_key`, so results do not depend on
chunking, device count or interruptions. Runs of cells that differ only in optimizer settings start from the
same initial point (common random numbers).

The loop is a ``lax.while_loop`` per run; under ``vmap`` it becomes one loop that runs until every run is
done, and finished runs are frozen by a select (their ``W``, optimizer state and step count stop
changing). A run is done when ``‖∇F‖ ≤ grad_tol``, when its step budget is spent, or when anything in it
is non-finite (flagged ``diverged``; the other runs of the batch are independent and unaffected).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsym.config import TrainConfig
from jaxsym.engine.interface import Engine
from jaxsym.landscape import activations
from jaxsym.numerics import optimizers
from jaxsym.numerics.parallel import invariant_jit

Array = jax.Array
R = TypeVar("R")


class RunResult(NamedTuple):
    """End of one training run (add a leading batch axis under vmap).

    Attributes:
      W: (k, d) final weights, training dtype.
      loss: () population loss at W.
      grad_norm: () ‖∇F(W)‖ (Frobenius).
      steps: () int32 optimizer steps taken.
      diverged: () bool, a non-finite value was met (W is then the last finite iterate).
    """

    W: Array
    loss: Array
    grad_norm: Array
    steps: Array
    diverged: Array


def cell_key(seed: int, d: int, k: int) -> Array:
    """Base key of a grid cell: ``fold_in(fold_in(key(seed), d), k)``."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), d), k)


def run_key(base: Array, run: Array) -> Array:
    """Key of one run from the cell's base key and the run's global index."""
    return jax.random.fold_in(base, run)


def init_weights(key: Array, d: int, k: int, scale: float, dtype: jnp.dtype) -> Array:
    """Gaussian initialisation ``W_ij ~ N(0, scale² / d)``, shape (k, d).

    Always drawn in float32 and then cast to ``dtype``, whether or not x64 is enabled, so that a float32 and a
    float64 sweep of one seed start every run from the same point.
    """
    factor = np.float32(scale) / np.sqrt(np.float32(d))
    return (factor * jax.random.normal(key, (k, d), dtype=jnp.float32)).astype(dtype)


def make_optimizer(cfg: TrainConfig, schedule: optax.Schedule | Array | None = None
                   ) -> optax.GradientTransformation:
    """The optax transformation named by ``cfg.optimizer`` (:mod:`jaxsym.numerics.optimizers`), at
    ``cfg.learning_rate`` or at ``schedule`` (a schedule, or a step size traced as a program argument)."""
    lr = cfg.learning_rate if schedule is None else schedule
    return optimizers.make(cfg.optimizer, lr, optimizers.Hyper(cfg.momentum, cfg.b1, cfg.b2, cfg.weight_decay))


def generic(cfg: TrainConfig) -> dict[str, object]:
    """``cfg``'s settings but its step size: what a training program is keyed on when the step size and the
    cell's random key are its arguments (:func:`cell_inputs`), so that cells and sweeps that differ only in
    these values (a grid over the learning rate, another seed) share compiled programs."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "learning_rate"}


def cell_inputs(cfg: TrainConfig, seed: int, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The runtime values of a cell's training programs: the cell's base key as key data (2,) uint32
    (:func:`cell_key`, computed here, so any Python int seed is exact) and the step size () in the training
    dtype (the value a constant step size would be rounded to in the program)."""
    with jax.enable_x64(jnp.dtype(cfg.dtype) == jnp.float64):
        base = np.asarray(jax.random.key_data(cell_key(seed, d, k)))
    return base, np.asarray(cfg.learning_rate, cfg.dtype)


def starts(runs: Array, base: Array, d: int, k: int, cfg: TrainConfig) -> Array:
    """The runs' initial weights (N, k, d) in the training dtype (:func:`init_weights`), from the cell's key data
    ``base`` (:func:`cell_inputs`): a program argument, so one program serves every seed."""
    key = jax.random.wrap_key_data(base)
    return jax.vmap(lambda r: init_weights(run_key(key, r), d, k, cfg.init_scale, jnp.dtype(cfg.dtype)))(runs)


def bind_inputs(eng: Engine, base: np.ndarray, lr: np.ndarray, dtype: str) -> Engine:
    """The :class:`~jaxsym.engine.interface.Engine` a driver calls: ``init(runs)`` and ``advance(state, until)``
    of an engine whose programs take the cell's runtime values (:func:`cell_inputs`) as their last arguments,
    with these bound; every call in ``dtype``'s x64 mode (:func:`in_dtype`)."""
    return Engine(in_dtype(lambda runs: eng.init(runs, base, lr), dtype),
                  in_dtype(lambda s, until: eng.advance(s, until, lr), dtype),
                  in_dtype(eng.finish, dtype), in_dtype(eng.n_running, dtype))


class TrainState(NamedTuple):
    """In-flight state of one run (a pytree; checkpointable with orbax).

    Attributes:
      step: () int32 steps taken.   W: (k, d) weights.   opt_state: the optax state.
      g: (k, d) gradient at W.      finite: () bool, nothing non-finite met so far.
    """

    step: Array
    W: Array
    opt_state: optax.OptState
    g: Array
    finite: Array


class RunLoop(NamedTuple):
    """The training loop of *one* run split in pure functions, so that a long chunk can be stopped,
    checkpointed and resumed between segments: ``finish(advance(init(W0), steps))`` is one whole run, and
    ``advance(advance(s, a), b) == advance(s, b)`` bit for bit (the loop body does not depend on the bound).
    :func:`make_batch_engine` vmaps it into a chunk :class:`~jaxsym.engine.interface.Engine`.
    """

    init: Callable[[Array], TrainState]
    advance: Callable[[TrainState, Array], TrainState]
    finish: Callable[[TrainState], RunResult]
    running: Callable[..., Array]  # running(s, tol=grad_tol): budget left, ‖∇F‖ > tol, all finite
    step: Callable[[TrainState], TrainState]  # one optimizer step


def make_run_loop(cfg: TrainConfig, V: Array, learning_rate: Array | None = None) -> RunLoop:
    """Build the single-run loop for target ``V`` (m, d) in the training dtype, at ``cfg.learning_rate`` or at
    ``learning_rate`` (a () array: a program argument, see :func:`cell_inputs`)."""
    dtype = jnp.dtype(cfg.dtype)
    V = jnp.asarray(V, dtype)
    opt = make_optimizer(cfg, learning_rate)
    tol = jnp.asarray(cfg.grad_tol, dtype)

    act = activations.ACTIVATIONS[cfg.activation]
    if act.train is not None:
        # the activation's fast loss and gradient; correlated inputs Σ = L Lᵀ: F_Σ(W) = F(W L; V L), so
        # ∇F_Σ(W) = ∇F(W L; V L) Lᵀ (the fast path too)
        d = V.shape[1]
        L = None if cfg.input_corr == 0.0 else \
            jnp.asarray(np.linalg.cholesky(activations.exchangeable_cov(d, cfg.input_corr)), dtype)
        fast_loss, fast_grad = act.train(V if L is None else V @ L)

        def grad_fn(W: Array) -> Array:
            return fast_grad(W) if L is None else fast_grad(W @ L) @ L.T

        def loss_fn(W: Array) -> Array:
            return fast_loss(W) if L is None else fast_loss(W @ L)
    else:  # other settings: differentiate the population loss (jaxsym.landscape.activations)
        obj = activations.objective(cfg.activation, cfg.input_corr)

        def grad_fn(W: Array) -> Array:
            return obj.grad(W, V)

        def loss_fn(W: Array) -> Array:
            return obj.loss(W, V)

    def init(W0: Array) -> TrainState:
        W0 = W0.astype(dtype)
        g0 = grad_fn(W0)
        return TrainState(jnp.int32(0), W0, opt.init(W0), g0, jnp.all(jnp.isfinite(g0)) & jnp.all(jnp.isfinite(W0)))

    def running(s: TrainState, stop_at: Array | None = None) -> Array:
        return (s.step < cfg.steps) & (jnp.linalg.norm(s.g) > (tol if stop_at is None else stop_at)) & s.finite

    def step(s: TrainState) -> TrainState:
        updates, opt_state = opt.update(s.g, s.opt_state, s.W)
        W = optax.apply_updates(s.W, updates)
        g = grad_fn(W)
        finite = jnp.all(jnp.isfinite(W)) & jnp.all(jnp.isfinite(g))
        # keep the last finite iterate of a diverging run
        return TrainState(s.step + 1, jnp.where(finite, W, s.W), opt_state, jnp.where(finite, g, s.g), finite)

    def advance(s: TrainState, until: Array) -> TrainState:
        return jax.lax.while_loop(lambda s: running(s) & (s.step < until), step, s)

    def finish(s: TrainState) -> RunResult:
        f = loss_fn(s.W)
        return RunResult(s.W, f, jnp.linalg.norm(s.g), s.step, ~s.finite | ~jnp.isfinite(f))

    return RunLoop(init, advance, finish, running, step)


def make_train_from(cfg: TrainConfig, V: Array) -> Callable[[Array], RunResult]:
    """Return ``train_from(W0) -> RunResult``: optimise from the given start ``W0`` (k, d)."""
    eng = make_run_loop(cfg, V)
    return lambda W0: eng.finish(eng.advance(eng.init(W0), jnp.int32(cfg.steps)))


def make_train(cfg: TrainConfig, V: Array, k: int) -> Callable[[Array], RunResult]:
    """Return ``train(key) -> RunResult`` for one run of a ``k``-neuron student on target ``V`` (m, d)."""
    train_from = make_train_from(cfg, V)
    d = V.shape[1]

    def train(key: Array) -> RunResult:
        return train_from(init_weights(key, d, k, cfg.init_scale, jnp.dtype(cfg.dtype)))

    return train


def in_dtype(fn: Callable[..., R], dtype: str) -> Callable[..., R]:
    """``fn`` run with x64 enabled when ``dtype`` is float64 (so that a float64 program really is float64:
    without x64, JAX silently makes float64 arrays float32). Jit inside: tracing happens under the flag."""
    if jnp.dtype(dtype) != jnp.float64:
        return fn

    def wrapped(*args: object) -> R:
        with jax.enable_x64(True):
            return fn(*args)

    return wrapped


def make_batch_engine(cfg: TrainConfig, V: Array, k: int, seed: int) -> Engine[TrainState, RunResult]:
    """Chunk :class:`~jaxsym.engine.interface.Engine` whose ``init`` draws each run's start from ``(seed, d, k, run)``
    (in float32, then cast); the whole batch trains until its slowest run stops (the ``full`` protocol)."""
    V = np.asarray(V)
    d = V.shape[1]
    base, lr = cell_inputs(cfg, seed, d, k)

    def build() -> Engine[TrainState, RunResult]:
        def loop(lr: Array | None = None) -> RunLoop:
            return make_run_loop(cfg, jnp.asarray(V, cfg.dtype), lr)

        def init(runs: Array, base: Array, lr: Array) -> TrainState:
            return jax.vmap(loop(lr).init)(starts(runs, base, d, k, cfg))

        def advance(s: TrainState, until: Array, lr: Array) -> TrainState:
            return jax.vmap(loop(lr).advance, in_axes=(0, None))(s, until)

        key = (generic(cfg), V, k)  # the seed and the step size are arguments
        return Engine(  # a run's steps do not depend on the chunk size
            invariant_jit(init, name="batch-init", key=key),
            invariant_jit(advance, name="batch-advance", key=key),
            invariant_jit(jax.vmap(loop().finish), name="batch-finish", key=key),
            invariant_jit(lambda s: jnp.sum(jax.vmap(loop().running)(s)), name="batch-running", key=key),
        )

    return bind_inputs(in_dtype(build, cfg.dtype)(), base, lr, cfg.dtype)


def make_train_batch(cfg: TrainConfig, V: Array, k: int, seed: int) -> Callable[[Array], RunResult]:
    """``runs (n,) int -> RunResult`` with a leading axis n: the whole training of a chunk of runs as one
    jitted, vmapped program (the batch engine's init, advance over the full budget and finish, fused)."""
    eng = make_batch_engine(cfg, V, k, seed)
    return in_dtype(lambda runs: eng.finish(eng.advance(eng.init(runs), jnp.int32(cfg.steps))), cfg.dtype)
