"""Other activations and non-isotropic inputs against Monte Carlo and finite differences."""

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsym
from jaxsym.landscape import activations


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


NUMPY_ACTS = {
    "relu": lambda z: np.maximum(z, 0),
    "erf": lambda z: np.asarray(jax.scipy.special.erf(z)),
    "softplus": lambda z: np.logaddexp(0, z),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "gelu": lambda z: np.asarray(jax.nn.gelu(z, approximate=False)),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.1 * z),
}


def _mc(W, V, act, sigma, n, rng):
    d = W.shape[1]
    X = rng.multivariate_normal(np.zeros(d), sigma, size=n) if sigma is not None else rng.normal(size=(n, d))
    f = NUMPY_ACTS[act]
    r = f(X @ np.asarray(W).T).sum(1) - f(X @ np.asarray(V).T).sum(1)
    s = 0.5 * r**2
    return s.mean(), s.std() / np.sqrt(n)


@pytest.mark.parametrize("act", sorted(activations.ACTIVATIONS))
def test_loss_matches_monte_carlo(act):
    rng = np.random.default_rng(zlib.crc32(act.encode()))  # str hash() differs per process: not reproducible
    W, V = jnp.asarray(rng.normal(size=(3, 4)) / 2), jnp.asarray(rng.normal(size=(2, 4)) / 2)
    A = rng.normal(size=(4, 4))
    sigma = A @ A.T / 4 + 0.5 * np.eye(4)
    for cov in (None, sigma):
        mean, se = _mc(W, V, act, cov, 300_000, rng)
        got = float(activations.loss(W, V, act, sigma=None if cov is None else jnp.asarray(cov)))
        assert abs(got - mean) < 4 * se + 1e-12


def test_identity_covariance_reproduces_the_isotropic_loss():
    rng = np.random.default_rng(1)
    W, V = jnp.asarray(rng.normal(size=(4, 5))), jnp.asarray(rng.normal(size=(4, 5)))
    for act in ("relu", "erf", "tanh"):
        a = activations.loss(W, V, act)
        b = activations.loss(W, V, act, sigma=jnp.eye(5))
        assert float(a) == pytest.approx(float(b), rel=1e-13)
    assert float(activations.loss(W, V, "relu")) == pytest.approx(float(jaxsym.loss(W, V)), rel=1e-14)


def test_quadrature_equals_the_closed_forms():
    rng = np.random.default_rng(2)
    A, B = jnp.asarray(rng.normal(size=(3, 4)) / 2), jnp.asarray(rng.normal(size=(5, 4)) / 2)  # norms ~ 1
    np.testing.assert_allclose(activations.kappa_matrix(jax.scipy.special.erf, A, B, n=60),
                               activations.kappa_erf(A, B), atol=1e-9)
    # a kink converges slowly: leaky relu by quadrature only to ~2e-3 at n = 80 (why it has a closed form)
    leaky = activations.ACTIVATIONS["leaky_relu"].sigma
    np.testing.assert_allclose(activations.kappa_matrix(leaky, A, B, n=80), activations.kappa_leaky_relu(A, B),
                               atol=5e-3)


@pytest.mark.parametrize("act", ["erf", "softplus", "tanh", "gelu", "leaky_relu"])
def test_gradient_matches_finite_differences_and_is_finite_at_w_equals_v(act):
    rng = np.random.default_rng(3)
    W, V = jnp.asarray(rng.normal(size=(3, 3)) / 2), jnp.asarray(rng.normal(size=(3, 3)) / 2)
    f = lambda w: activations.loss(w.reshape(3, 3), V, act)  # noqa: E731
    g = np.asarray(jax.grad(f)(W.ravel()))
    eps = 1e-6
    fd = np.array([(f(W.ravel() + eps * e) - f(W.ravel() - eps * e)) / (2 * eps) for e in np.eye(9)])
    np.testing.assert_allclose(g, fd, atol=1e-7)
    # W = V is a global minimum: zero gradient, exactly for the closed form, up to the quadrature error
    # otherwise (the rule is not exactly symmetric in its two arguments), which falls geometrically in n
    errs = [np.abs(np.asarray(jax.grad(lambda w, n=n: activations.loss(w, V, act, n=n))(V))).max()
            for n in (16, 32, 64, 128)]
    assert np.isfinite(errs).all()
    if activations.ACTIVATIONS[act].kappa is not None:  # a closed form: exact to rounding
        assert errs[-1] < 1e-14
    else:
        assert errs[-1] < 1e-8 and errs[-1] < errs[1] / 100


def test_permutation_invariance_with_covariance():
    """With Σ invariant under a coordinate permutation P, F(W Pᵀ; V Pᵀ) = F(W; V) for every activation."""
    rng = np.random.default_rng(4)
    W, V = jnp.asarray(rng.normal(size=(3, 4))), jnp.asarray(rng.normal(size=(3, 4)))
    sigma = jnp.asarray(np.eye(4) + 0.3)  # exchangeable: invariant under all permutations
    perm = np.array([2, 0, 3, 1])
    for act in ("relu", "erf", "softplus"):
        a = float(activations.loss(W, V, act, sigma=sigma))
        b = float(activations.loss(W[:, perm], V[:, perm], act, sigma=sigma))
        c = float(activations.loss(W[::-1], V, act, sigma=sigma))
        assert a == pytest.approx(b, rel=1e-10) and a == pytest.approx(c, rel=1e-10)


@pytest.mark.parametrize("act,rho", [("relu", 0.3), ("erf", 0.0), ("softplus", 0.2)])
def test_objective_derivatives(act, rho):
    """Gradient and Hessian of every objective against finite differences of its loss and gradient."""
    obj = activations.objective(act, rho)
    rng = np.random.default_rng(5)
    W, V = jnp.asarray(rng.normal(size=(3, 3)) / 2), jnp.eye(3)
    eps = 1e-6
    f = lambda w: obj.loss(w.reshape(3, 3), V)  # noqa: E731
    fd = np.array([(f(W.ravel() + eps * e) - f(W.ravel() - eps * e)) / (2 * eps) for e in np.eye(9)])
    np.testing.assert_allclose(np.asarray(obj.grad(W, V)).ravel(), fd, atol=1e-7)
    g = lambda w: np.asarray(obj.grad(jnp.asarray(w.reshape(3, 3)), V)).ravel()  # noqa: E731
    Hfd = np.stack([(g(np.asarray(W).ravel() + eps * e) - g(np.asarray(W).ravel() - eps * e)) / (2 * eps)
                    for e in np.eye(9)], axis=1)
    np.testing.assert_allclose(np.asarray(obj.hessian(W, V)), Hfd, atol=1e-6)


def test_sweep_with_erf_and_correlated_inputs(tmp_path):
    import pandas as pd

    from jaxsym import config
    from jaxsym.sweep.driver import run_sweep
    with jax.enable_x64(False):
        cfg = config.from_dict({"name": "erf", "seed": 0, "runs": 8, "chunk_size": 8,
                                "grid": {"d": [4], "k": "d", "activation": ["erf", "relu"]},
                                "train": {"steps": 3000, "learning_rate": 0.2, "input_corr": 0.2}})
        run_sweep(cfg, tmp_path, progress=False)
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    assert set(runs["activation"]) == {"erf", "relu"} and len(runs) == 16
    crit = runs[runs["status"].isin(["global", "spurious", "saddle", "degenerate"])]
    assert len(crit) and (crit["grad_norm"] <= 1e-10).all()
    minima = pd.read_parquet(tmp_path / "minima.parquet")
    assert (minima[minima["status"] == "global"]["isotropy"] == "ΔS4").all()  # exchangeable Σ keeps the group


def test_config_knows_every_activation():
    from jaxsym import config
    assert set(config.ACTIVATION_NAMES) == set(activations.ACTIVATIONS)
