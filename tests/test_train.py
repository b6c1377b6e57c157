"""Training engine: reproducibility, batch independence, divergence, early stop, optimizers."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym.config import OPTIMIZERS, TrainConfig
from jaxsym.engine.descent import cell_key, init_weights, make_train_batch, make_train_from, run_key

V = jnp.eye(4)
CFG = TrainConfig(steps=400, learning_rate=0.1, grad_tol=1e-5)


def test_same_run_same_result_whatever_the_batch():
    batch = make_train_batch(CFG, V, 4, seed=3)
    full = batch(jnp.arange(16, dtype=jnp.uint32))
    part = batch(jnp.arange(5, 9, dtype=jnp.uint32))
    np.testing.assert_array_equal(np.asarray(full.W[5:9]), np.asarray(part.W))
    np.testing.assert_array_equal(np.asarray(full.steps[5:9]), np.asarray(part.steps))
    alone = batch(jnp.array([7], jnp.uint32))
    np.testing.assert_array_equal(np.asarray(full.W[7]), np.asarray(alone.W[0]))


def test_keys_depend_only_on_seed_cell_and_run():
    k1 = init_weights(run_key(cell_key(0, 4, 4), 11), 4, 4, 1.0, jnp.float32)
    k2 = init_weights(run_key(cell_key(0, 4, 4), 11), 4, 4, 1.0, jnp.float32)
    k3 = init_weights(run_key(cell_key(1, 4, 4), 11), 4, 4, 1.0, jnp.float32)
    k4 = init_weights(run_key(cell_key(0, 4, 4), 12), 4, 4, 1.0, jnp.float32)
    assert np.array_equal(k1, k2) and not np.array_equal(k1, k3) and not np.array_equal(k1, k4)


def test_init_scale_and_dtype():
    Ws = jax.vmap(lambda r: init_weights(run_key(cell_key(0, 50, 8), r), 50, 8, 2.0, jnp.float32))(jnp.arange(200))
    assert Ws.dtype == jnp.float32
    assert np.std(np.asarray(Ws)) == pytest.approx(2.0 / np.sqrt(50), rel=0.05)


def test_diverged_run_is_flagged_and_others_are_unaffected():
    train = jax.jit(jax.vmap(make_train_from(dataclasses.replace(CFG, learning_rate=0.5), V)))
    rng = np.random.default_rng(0)
    W0 = rng.normal(size=(4, 4, 4)).astype(np.float32) / 2
    bad = W0.copy()
    bad[2, 0, 0] = 3e38  # overflows at the first step
    res_bad = train(jnp.asarray(bad))
    res_ok = train(jnp.asarray(W0))
    assert bool(res_bad.diverged[2]) and not bool(res_ok.diverged[2])
    assert not np.any(np.asarray(res_bad.diverged)[[0, 1, 3]])
    for i in (0, 1, 3):
        np.testing.assert_array_equal(np.asarray(res_bad.W[i]), np.asarray(res_ok.W[i]))
    assert np.isfinite(np.asarray(res_bad.W[2])).all()  # the last finite iterate is kept


def test_finished_runs_stop_changing():
    """A run that meets grad_tol keeps its step count, though others in the batch go on."""
    train = jax.jit(jax.vmap(make_train_from(dataclasses.replace(CFG, steps=3000, grad_tol=1e-4), V)))
    rng = np.random.default_rng(1)
    W0 = np.stack([np.eye(4) + 1e-3 * rng.normal(size=(4, 4)), rng.normal(size=(4, 4)) / 2]).astype(np.float32)
    res = train(jnp.asarray(W0))
    steps = np.asarray(res.steps)
    assert steps[0] < steps[1]
    assert float(res.grad_norm[0]) <= 1e-4
    single = jax.jit(make_train_from(dataclasses.replace(CFG, steps=3000, grad_tol=1e-4), V))(jnp.asarray(W0[0]))
    np.testing.assert_array_equal(np.asarray(single.W), np.asarray(res.W[0]))
    assert int(single.steps) == steps[0]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_decreases_the_loss(name):
    lr = 0.1 if name in ("sgd", "momentum", "nesterov", "adagrad") else 0.01
    cfg = TrainConfig(optimizer=name, learning_rate=lr, steps=200, grad_tol=0.0)
    res = make_train_batch(cfg, V, 4, seed=0)(jnp.arange(4, dtype=jnp.uint32))
    res0 = make_train_batch(dataclasses.replace(cfg, steps=1), V, 4, seed=0)(jnp.arange(4, dtype=jnp.uint32))
    assert np.all(np.asarray(res.loss) < np.asarray(res0.loss))
    assert np.all(np.asarray(res.steps) == 200)


def test_float64_training_stays_float64():
    with jax.enable_x64(True):
        res = make_train_batch(dataclasses.replace(CFG, dtype="float64"), V, 4, seed=0)(jnp.arange(2))
        assert res.W.dtype == jnp.float64 and res.loss.dtype == jnp.float64
    res = make_train_batch(CFG, V, 4, seed=0)(jnp.arange(2))
    assert res.W.dtype == jnp.float32


def test_correlated_relu_engine_uses_the_whitened_fast_gradient():
    """The engine's float32 gradient for Σ = 0.7 I + 0.3·11ᵀ equals the float64 objective's, ∇F(W L; V L) Lᵀ."""
    from jaxsym.engine.descent import make_run_loop
    from jaxsym.landscape import activations

    d = 6
    V = jnp.eye(d)
    W = jax.random.normal(jax.random.key(0), (d, d)) / np.sqrt(d)
    eng = make_run_loop(TrainConfig(input_corr=0.3), V)
    with jax.enable_x64(True):
        exact = activations.objective("relu", 0.3).grad(jnp.asarray(W, jnp.float64), jnp.eye(d, dtype=jnp.float64))
    np.testing.assert_allclose(np.asarray(eng.init(W).g), np.asarray(exact), atol=2e-6)



def _dots(text: str) -> list[str]:
    """The StableHLO dot_general lines of a lowered program."""
    return [line for line in text.splitlines() if "stablehlo.dot_general" in line]


def test_training_programs_compute_float32_products_in_full_float32():
    """JAX lets GPUs compute float32 products in TF32 and TPUs in bfloat16 by default (which also made a run's
    trajectory depend on its batch on an H100); the engine's programs ask for full float32 in every product."""
    from jaxsym.numerics.parallel import invariant_jit

    cfg = TrainConfig(steps=20, grad_tol=0.0, dtype="float32", learning_rate=0.05)
    train = jax.vmap(make_train_from(cfg, jnp.eye(4)))
    W0 = jnp.ones((3, 4, 4), jnp.float32) + jnp.arange(16.0).reshape(4, 4) / 16
    plain = _dots(jax.jit(train).lower(W0).as_text())
    assert plain and not any("HIGHEST" in line for line in plain)  # JAX's default, which must be changed
    exact = _dots(invariant_jit(train).lower(W0).as_text())
    assert len(exact) == len(plain) and all("precision = [HIGHEST, HIGHEST]" in line for line in exact)


def test_every_optimizer_says_whether_the_hand_off_applies():
    """No silent special case: each optimizer names the contraction argument of the hand-off test or says why
    there is none, and the fast protocol's phases follow it (several thresholds only where the test applies)."""
    from jaxsym.engine.compact import thresholds
    from jaxsym.numerics.optimizers import OPTIMIZERS

    for name, opt in OPTIMIZERS.items():
        assert (opt.contraction is None) != (opt.why_not == ""), name
        phases = thresholds(TrainConfig(optimizer=name))
        assert (len(phases) > 1) == (opt.contraction is not None), name
