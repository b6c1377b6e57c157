"""The closed forms against independent references: Monte Carlo, finite differences, symmetry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsym
from jaxsym.landscape import model


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield

SHAPES = [(4, 4, 4), (3, 5, 3), (5, 4, 4), (3, 5, 2)]  # (k, d, m): k = d, k < d, k > d, k ≠ m


def _rand(rng, *shape):
    return jnp.asarray(rng.normal(size=shape) / np.sqrt(shape[-1]))


def _mc_loss(W, V, n, rng):
    """Monte Carlo estimate of ½E[(f_W − f_V)²] and its standard error, straight from the definition."""
    X = rng.normal(size=(n, W.shape[1]))
    r = np.maximum(X @ np.asarray(W).T, 0).sum(1) - np.maximum(X @ np.asarray(V).T, 0).sum(1)
    s = 0.5 * r**2
    return s.mean(), s.std() / np.sqrt(n)


def _fd(f, x, eps=1e-6):
    """Central finite differences of f: R^n → R^p at x, returns (p, n)."""
    x = np.asarray(x, np.float64).ravel()
    cols = [(np.asarray(f(x + eps * e)).ravel() - np.asarray(f(x - eps * e)).ravel()) / (2 * eps)
            for e in np.eye(x.size)]
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("k,d,m", SHAPES)
def test_loss_matches_monte_carlo(k, d, m):
    rng = np.random.default_rng(k * 100 + d * 10 + m)
    W, V = _rand(rng, k, d), _rand(rng, m, d)
    mean, se = _mc_loss(W, V, 400_000, rng)
    assert abs(float(jaxsym.loss(W, V)) - mean) < 4 * se


def test_kernel_matches_monte_carlo():
    rng = np.random.default_rng(7)
    u, v = rng.normal(size=5), rng.normal(size=5)
    X = rng.normal(size=(400_000, 5))
    s = np.maximum(X @ u, 0) * np.maximum(X @ v, 0)
    assert abs(float(jaxsym.kernel(jnp.asarray(u), jnp.asarray(v))) - s.mean()) < 4 * s.std() / np.sqrt(len(s))
    assert np.isclose(float(jaxsym.kernel(jnp.asarray(u), jnp.asarray(u))), u @ u / 2)


@pytest.mark.parametrize("k,d,m", SHAPES)
def test_grad_and_hessian_match_finite_differences(k, d, m):
    rng = np.random.default_rng(k + d + m)
    W, V = _rand(rng, k, d), _rand(rng, m, d)
    g = np.asarray(jaxsym.grad(W, V)).ravel()
    g_fd = _fd(lambda w: jaxsym.loss(jnp.asarray(w.reshape(k, d)), V), W)[0]
    np.testing.assert_allclose(g, g_fd, atol=1e-7)
    H = np.asarray(jaxsym.hessian(W, V))
    H_fd = _fd(lambda w: jaxsym.grad(jnp.asarray(w.reshape(k, d)), V), W)
    np.testing.assert_allclose(H, H_fd, atol=1e-6)
    np.testing.assert_allclose(H, H.T, atol=1e-12)


@pytest.mark.parametrize("k", [3, 5])
def test_derivatives_at_w_equals_v(k):
    """At W = V the formula's autodiff is NaN; the closed forms are finite and match differences."""
    rng = np.random.default_rng(k)
    V = _rand(rng, k, k)
    assert jnp.isnan(jax.grad(lambda w: model.loss(w, V))(V)).any()  # why closed forms exist
    g = jaxsym.grad(V, V)
    assert np.abs(np.asarray(g)).max() < 1e-12
    assert abs(float(jaxsym.loss(V, V))) < 1e-14
    H = np.asarray(jaxsym.hessian(V, V))
    H_fd = _fd(lambda w: jaxsym.grad(jnp.asarray(w.reshape(k, k)), V), V, eps=1e-5)
    np.testing.assert_allclose(H, H_fd, atol=2e-5)  # the Hessian is only Lipschitz there: O(eps)


def test_parallel_rows_are_finite():
    rng = np.random.default_rng(3)
    V = _rand(rng, 4, 4)
    W = jnp.stack([V[0], 2 * V[0], -V[1], V[2] * 0.5])  # parallel and antiparallel rows
    for out in (jaxsym.loss(W, V), jaxsym.grad(W, V), jaxsym.hessian(W, V)):
        assert np.isfinite(np.asarray(out)).all()
    H_fd = _fd(lambda w: jaxsym.grad(jnp.asarray(w.reshape(4, 4)), V), W, eps=1e-5)
    np.testing.assert_allclose(np.asarray(jaxsym.hessian(W, V)), H_fd, atol=5e-5)


def test_zero_row_is_a_dead_neuron():
    rng = np.random.default_rng(4)
    W, V = _rand(rng, 4, 4), _rand(rng, 4, 4)
    W0 = W.at[2].set(0.0)
    assert float(jaxsym.loss(W0, V)) == pytest.approx(float(jaxsym.loss(jnp.delete(W0, 2, axis=0), V)), abs=1e-14)
    g = np.asarray(jaxsym.grad(W0, V))
    assert np.isfinite(g).all() and np.all(g[2] == 0)
    np.testing.assert_allclose(g[[0, 1, 3]], np.asarray(jaxsym.grad(jnp.delete(W0, 2, axis=0), V)), atol=1e-14)
    H = np.asarray(jaxsym.hessian(W0, V)).reshape(4, 4, 4, 4)
    assert np.isfinite(H).all() and np.all(H[2] == 0) and np.all(H[:, :, 2] == 0)


def test_hessian_at_identity_has_known_eigenvalues():
    for k in (4, 6):
        I = jnp.eye(k)
        eig = np.linalg.eigvalsh(np.asarray(jaxsym.hessian(I, I)))
        for target in (0.25 - 1 / (2 * np.pi), 0.25 + 1 / (2 * np.pi)):
            assert np.min(np.abs(eig - target)) < 1e-12


def test_fast_angles_agree_away_from_parallel():
    rng = np.random.default_rng(5)
    W, V = _rand(rng, 5, 5), _rand(rng, 5, 5)
    np.testing.assert_allclose(model.grad(W, V, accurate=False), model.grad(W, V), atol=1e-10)
    np.testing.assert_allclose(model.loss(W, V, accurate=False), model.loss(W, V), atol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype_is_kept(dtype):
    W = jnp.ones((3, 4), dtype) + jnp.arange(12, dtype=dtype).reshape(3, 4) / 10
    V = jnp.eye(3, 4)
    assert jaxsym.loss(W, V).dtype == dtype
    assert jaxsym.grad(W, V).dtype == dtype
    assert jaxsym.hessian(W, V).dtype == dtype
    assert jaxsym.grad(W, V, accurate=False).dtype == dtype


def test_jit_and_vmap():
    rng = np.random.default_rng(6)
    Ws, V = jnp.asarray(rng.normal(size=(7, 3, 4))), jnp.eye(3, 4)
    batched = jax.jit(jax.vmap(jaxsym.grad, in_axes=(0, None)))(Ws, V)
    np.testing.assert_allclose(batched[3], jaxsym.grad(Ws[3], V), atol=1e-14)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="same d"):
        jaxsym.loss(jnp.ones((3, 4)), jnp.ones((3, 5)))


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 5), st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_loss_invariant_under_permutations(k, d, seed):
    """F(P W) = F(W) for any row permutation, and F(W Qᵀ; V Qᵀ) = F(W; V) for any column permutation."""
    rng = np.random.default_rng(seed)
    W, V = _rand(rng, k, d), _rand(rng, k, d)
    f = float(jaxsym.loss(W, V))
    assert float(jaxsym.loss(W[rng.permutation(k)], V)) == pytest.approx(f, rel=1e-12, abs=1e-14)
    assert float(jaxsym.loss(W, V[rng.permutation(k)])) == pytest.approx(f, rel=1e-12, abs=1e-14)
    cols = rng.permutation(d)
    assert float(jaxsym.loss(W[:, cols], V[:, cols])) == pytest.approx(f, rel=1e-12, abs=1e-14)
    # with V = I (k = d) every (π, ρ) ∈ S_k × S_d is a symmetry
    I = jnp.eye(k)
    Wk = _rand(rng, k, k)
    g = float(jaxsym.loss(Wk, I))
    assert float(jaxsym.loss(Wk[rng.permutation(k)][:, rng.permutation(k)], I)) == pytest.approx(g, rel=1e-12)


def test_training_gradient_equals_the_closed_form():
    rng = np.random.default_rng(8)
    for k, d, m in SHAPES:
        W, V = _rand(rng, k, d), _rand(rng, m, d)
        np.testing.assert_allclose(model.make_train_grad(V)(W), jaxsym.grad(W, V), atol=1e-9)
    W = _rand(rng, 4, 4).astype(jnp.float32)
    assert model.make_train_grad(jnp.eye(4))(W).dtype == jnp.float32


def test_acos_fast_is_float32_accurate():
    x = np.linspace(-1, 1, 200_001).astype(np.float32).astype(np.float64)  # exactly representable inputs
    got = np.asarray(model.acos_fast(jnp.asarray(x, jnp.float32)), np.float64)
    err = np.max(np.abs(got - np.arccos(x)))
    ref32 = np.asarray(jnp.arccos(jnp.asarray(x, jnp.float32)), np.float64)
    assert err < 1e-6
    assert err <= 2 * np.max(np.abs(ref32 - np.arccos(x))) + 1e-7  # as good as XLA's float32 arccos
    with jax.enable_x64(True):
        g64 = np.asarray(model.acos_fast(jnp.asarray(x)))
    assert np.max(np.abs(g64 - np.arccos(x))) < 3e-8  # the approximation itself


def test_float32_training_gradient_is_accurate():
    rng = np.random.default_rng(9)
    W, V = _rand(rng, 10, 10), jnp.eye(10)
    g32 = model.make_train_grad(V.astype(jnp.float32))(W.astype(jnp.float32))
    np.testing.assert_allclose(np.asarray(g32, np.float64), np.asarray(jaxsym.grad(W, V)), atol=2e-6)


@pytest.mark.parametrize("k,d,m", SHAPES)
def test_hvp_equals_hessian_times_vector(k, d, m):
    rng = np.random.default_rng(k * 7 + d + m)
    W, V, X = _rand(rng, k, d), _rand(rng, m, d), _rand(rng, k, d)
    expected = np.asarray(jaxsym.hessian(W, V)) @ np.asarray(X).ravel()
    np.testing.assert_allclose(np.asarray(model.hvp(W, V, X)).ravel(), expected, atol=1e-12)
    I = jnp.eye(k, d)
    if k <= d:  # at W = V (θ = 0 pairs) too
        np.testing.assert_allclose(np.asarray(model.hvp(I, I, X)).ravel(),
                                   np.asarray(jaxsym.hessian(I, I)) @ np.asarray(X).ravel(), atol=1e-12)


def test_targets():
    I = model.make_target("identity", 5, 3)
    np.testing.assert_array_equal(I, np.eye(3, 5))
    Q = model.make_target("orthonormal", 6, 4, seed=1)
    np.testing.assert_allclose(Q @ Q.T, np.eye(4), atol=1e-12)
    np.testing.assert_array_equal(Q, model.make_target("orthonormal", 6, 4, seed=1))
    assert not np.allclose(Q, model.make_target("orthonormal", 6, 4, seed=2))
    G = model.make_target("gaussian", 5, 7, seed=0)
    assert G.shape == (7, 5)
    with pytest.raises(ValueError, match="m <= d"):
        model.make_target("orthonormal", 5, 6)
