"""Sampled objectives: SGD on samples of any input law (the sampled-SGD engine).

For a network ``f_θ`` (:mod:`jaxsym.landscape.networks`), teacher ``f_V`` and inputs ``x ~ P``
(:mod:`jaxsym.landscape.distributions`)

    F(θ) = ½ E_P[(f_θ(x) − f_V(x))²],      F̂_S(θ) = ½ mean_{x ∈ S} (f_θ(x) − f_V(x))².

**Training** (float32, one pure single-run engine vmapped over a chunk, like :mod:`jaxsym.engine.descent`): step
``t`` of run ``r`` uses the batch drawn from ``fold_in(key(seed, d, k, r), t)`` — fresh samples (``online``:
unbiased gradients of F) or a minibatch of one fixed training set per cell (``fixed``: gradients of F̂_train).
Step size constant, then linearly decayed; the run's result is the Polyak–Ruppert average of its last iterates.
A step depends only on ``(seed, d, k, r, t)``, so ``advance(advance(s, a), b) == advance(s, b)`` and chunks can
be checkpointed and resumed mid-run, bit for bit. The empirical certificate of its end points is
:mod:`jaxsym.certify.empirical`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxsym.config import ConfigError, SampledConfig, TrainConfig
from jaxsym.engine.descent import cell_key, make_optimizer, run_key
from jaxsym.engine.interface import Engine
from jaxsym.landscape import networks
from jaxsym.landscape.distributions import Sampler, closed_form_scale, make_sampler
from jaxsym.landscape.networks import Net
from jaxsym.landscape.students import BuiltIn, Student, load_factory, sample_loss
from jaxsym.numerics.parallel import invariant_jit

Array = jax.Array

# data streams of a cell: folded into the seed's key *before* d and k, with values ≥ 2³¹ that no d can take
TRAIN_SET, EVAL_SET, HESS_SET = 2**31, 2**31 + 1, 2**31 + 2


@dataclass(frozen=True)
class Problem:
    """One cell of a sampled sweep: sizes, student (:mod:`jaxsym.landscape.students`), law, teacher (the
    built-in :class:`~jaxsym.landscape.networks.Net` or a user's labelling function) and (``fixed`` mode) training
    set."""

    d: int
    k: int
    student: Student
    activation: str
    sampler: Sampler
    teacher: Net | Callable[[Array], Array]
    X_train: Array | None = None
    y_train: Array | None = None

    @property
    def hidden_layers(self) -> int:
        return self.student.hidden_layers

    @property
    def train_output(self) -> bool:
        return self.student.train_output

    def labels(self, X: Array) -> Array:
        """Teacher outputs ``f_V(X)`` (n,)."""
        if not isinstance(self.teacher, Net):
            return self.teacher(X)
        teacher = jax.tree.map(lambda t: t.astype(X.dtype), self.teacher)
        return networks.forward(teacher, X, self.activation)

    def loss(self, params: Any, X: Array, y: Array) -> Array:
        """``F̂`` on the sample ``(X, y)``."""
        return sample_loss(self.student, params, X, y)

    def draw(self, stream: int, n: int, seed: int, dtype: jnp.dtype = jnp.float32) -> tuple[Array, Array]:
        """A cell-level sample of ``n`` inputs and labels from one of the data streams."""
        key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), stream), self.d),
                                 self.k)
        X = jnp.asarray(self.sampler(key, n, self.d, jnp.float32), dtype)
        return X, self.labels(X)


def has_closed_form(scfg: SampledConfig, activation: str) -> bool:
    """Whether the population loss of this setting is the Gaussian closed form of :mod:`jaxsym.landscape.model`: online
    SGD of the two-layer ReLU student with fixed output weights on a rotation-invariant law with ``E x xᵀ = I``
    (``gaussian``, ``sphere``, ``student_t``; :func:`jaxsym.landscape.distributions.closed_form_scale`)."""
    return (scfg.hidden_layers == 1 and not scfg.train_output and scfg.mode == "online"
            and scfg.student is None and scfg.teacher is None
            and closed_form_scale(scfg.distribution, activation) == 1.0)


def make_problem(scfg: SampledConfig, d: int, k: int, m: int, activation: str, seed: int) -> Problem:
    """The :class:`Problem` of a cell (teacher of width ``m``; draws the fixed training set if needed)."""
    try:
        sampler = make_sampler(scfg.distribution, shift=scfg.shift, sampler=scfg.sampler)
    except ValueError as e:
        raise ConfigError(f"sampled.sampler: {e}") from None
    p = Problem(d, k, make_student(scfg, d, k, activation), activation, sampler, make_teacher(scfg, d, m))
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


def make_student(scfg: SampledConfig, d: int, k: int, activation: str) -> Student:
    """The cell's student: the built-in network, or the flax module named by ``sampled.student`` (its errors as
    :class:`~jaxsym.config.ConfigError` naming the module)."""
    if scfg.student is None:
        return BuiltIn(d, k, scfg.hidden_layers, scfg.train_output, activation)
    from jaxsym.landscape import flax_students

    try:
        student = flax_students.build_student(load_factory(scfg.student), d, k)
    except ValueError as e:
        raise ConfigError(f"sampled.student: {e}") from None
    # set away from their defaults, the built-in network's settings must agree with the module
    clash = [f"hidden_layers = {scfg.hidden_layers}, but the student {scfg.student} has hidden_layers = "
             f"{student.hidden_layers}"] if scfg.hidden_layers not in (1, student.hidden_layers) else []
    clash += [f"train_output = true, but the student {scfg.student} has a fixed read-out"] \
        if scfg.train_output and not student.train_output else []
    if clash:
        raise ConfigError(f"sampled.{clash[0]}; leave it out (it is read from the module)")
    return student


def make_teacher(scfg: SampledConfig, d: int, m: int) -> Net | Callable[[Array], Array]:
    """The cell's teacher: the identity network of width ``m`` or the labels of ``sampled.teacher``'s module."""
    if scfg.teacher is None:
        return networks.teacher(d, m, scfg.hidden_layers)
    from jaxsym.landscape import flax_students

    try:
        return flax_students.build_teacher(load_factory(scfg.teacher, "teacher"), d, m)
    except ValueError as e:
        raise ConfigError(f"sampled.teacher: {e}") from None


# --------------------------------------------------------------------------------------------------
# Training engine
# --------------------------------------------------------------------------------------------------
class SampledState(NamedTuple):
    """In-flight state of one run (a checkpointable pytree)."""

    step: Array
    params: Any  # the student's parameter pytree
    opt_state: optax.OptState
    avg: Any  # the student's parameter pytree
    finite: Array


class SampledResult(NamedTuple):
    """End of one run: the averaged iterate, steps taken, and whether anything non-finite was met."""

    params: Any  # the student's parameter pytree
    steps: Array
    diverged: Array


def schedule(lr: float, steps: int, scfg: SampledConfig) -> optax.Schedule:
    """Constant ``lr`` for ``decay_from·steps`` steps, then linear to ``final_lr_fraction·lr`` at ``steps``."""
    t0 = int(scfg.decay_from * steps)
    return optax.join_schedules([optax.constant_schedule(lr),
                                 optax.linear_schedule(lr, lr * scfg.final_lr_fraction, max(steps - t0, 1))], [t0])


def make_engine(p: Problem, train: TrainConfig, scfg: SampledConfig, seed: int
                ) -> Engine[tuple[Array, SampledState], SampledResult]:
    """Jitted, vmapped sampled-SGD :class:`~jaxsym.engine.interface.Engine` over a chunk of run indices (module
    docstring);
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
        params = p.student.init(k_init, train.init_scale)
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
