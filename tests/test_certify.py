"""Float64 polish and the certificate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym.certify.exact import STATUSES, classify, make_certify_batch, polish
from jaxsym.config import CertifyConfig, TrainConfig
from jaxsym.engine.descent import make_train_from
from jaxsym.landscape import model


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def test_polish_reaches_1e_10_from_a_nearby_point():
    rng = np.random.default_rng(0)
    V = jnp.eye(5)
    W0 = V + 1e-2 * jnp.asarray(rng.normal(size=(5, 5)))
    W, iters = polish(W0, V, iters=40, tol=1e-12)
    assert float(jnp.linalg.norm(model.grad(W, V))) <= 1e-10
    assert float(jnp.max(jnp.abs(W - V))) < 1e-8  # it found the nearby critical point, W = V
    assert int(iters) < 15


def _spurious_point():
    """Train k = d = 8 runs until one ends at a non-global point (an independent float32 GD)."""
    V = jnp.eye(8)
    train = jax.jit(jax.vmap(make_train_from(TrainConfig(steps=6000, grad_tol=1e-5, dtype="float32"), V)))
    rng = np.random.default_rng(3)
    res = train(jnp.asarray(rng.normal(size=(32, 8, 8)) / np.sqrt(8), jnp.float32))
    i = int(np.argmax(np.asarray(res.loss)))
    assert float(res.loss[i]) > 1e-3
    return res, i, V


def test_certificate_of_a_spurious_minimum_and_a_global_one():
    res, i, V = _spurious_point()
    cert = make_certify_batch(CertifyConfig(), V)(res.W.astype(jnp.float64),
                                                  res.grad_norm.astype(jnp.float64), res.diverged)
    status = np.array(STATUSES)[np.asarray(cert.status)]
    assert status[i] == "spurious"
    assert float(cert.grad_norm[i]) <= 1e-10 and float(cert.hess_min[i]) > 0
    # independent check of the minimum: the polished Hessian's eigenvalues are all positive
    assert np.linalg.eigvalsh(np.asarray(model.hessian(cert.W[i], V))).min() > 0
    assert float(cert.shift[i]) < 1e-3  # the polish stayed where training ended
    assert np.all(np.isin(status, ["global", "spurious"]))
    j = int(np.argmin(np.asarray(res.loss)))
    assert status[j] == "global"


def test_saddle_is_certified_as_saddle():
    """All neurons equal (W = c·11ᵀ) is a critical point of V = I found inside the symmetric subspace;
    it is a saddle: moving along the Hessian's negative direction lowers the loss (checked directly)."""
    V = jnp.eye(3)
    res_W = jnp.full((1, 3, 3), 0.5)
    cert = make_certify_batch(CertifyConfig(), V)(res_W, jnp.array([1e-4]), jnp.array([False]))
    W = cert.W[0]
    assert STATUSES[int(cert.status[0])] == "saddle"
    assert float(cert.grad_norm[0]) <= 1e-10
    _, vec = np.linalg.eigh(np.asarray(model.hessian(W, V)))
    step = 1e-3 * vec[:, 0].reshape(3, 3)
    assert float(model.loss(W + step, V)) < float(model.loss(W, V)) - 1e-8


def test_classify_rules():
    cfg = CertifyConfig(loss_tol=1e-8, grad_tol=1e-10, hess_tol=1e-6)
    f = jnp.array([0.0, 0.1, 0.1, 0.1, 0.1, jnp.nan])
    g = jnp.array([1e-12, 1e-12, 1e-12, 1e-12, 1e-3, 1e-12])
    h = jnp.array([0.1, 0.1, -0.1, 1e-9, 0.1, 0.1])
    out = classify(f, g, h, jnp.zeros(6, bool), cfg)
    assert [STATUSES[i] for i in np.asarray(out)] == [
        "global", "spurious", "saddle", "degenerate", "not_converged", "diverged"]
    assert STATUSES[int(classify(f[1], g[1], h[1], jnp.bool_(True), cfg))] == "diverged"


def test_unpolished_runs_are_not_converged():
    V = jnp.eye(3)
    W = jnp.ones((2, 3, 3))
    cert = make_certify_batch(CertifyConfig(polish_from=1e-3), V)(W, jnp.array([1.0, 1.0]), jnp.array([False, True]))
    assert [STATUSES[i] for i in np.asarray(cert.status)] == ["not_converged", "diverged"]
    assert np.all(np.asarray(cert.polish_iters) == 0)


def test_accelerator_path_vmaps_the_per_run_programs_and_bounds_their_blocks(monkeypatch):
    """Where the backend is an accelerator (simulated here), per_run vmaps instead of mapping one run at a time
    (same results to rounding), and the block of runs per call fits the memory budget."""
    from jaxsym import config
    from jaxsym.certify.exact import make_certify, per_run
    from jaxsym.sweep.plan import CERTIFY_BLOCK, CPU_BLOCK, certify_block, certify_bytes_per_run

    res, _, V = _spurious_point()
    W = np.asarray(res.W, np.float64)[:8]
    with jax.enable_x64(True):
        one_at_a_time = jax.device_get(make_certify_batch(CertifyConfig(), V)(W, np.full(8, 1e-5), np.zeros(8, bool)))
        monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
        batched = per_run(make_certify(CertifyConfig(), V))
        vmapped = jax.device_get(batched(W, np.full(8, 1e-5), np.zeros(8, bool)))
        # lax.map (one run at a time) is a scan over the runs; the certificate itself has none
        args = (W, np.full(8, 1e-5), np.zeros(8, bool))
        assert "scan" not in str(jax.make_jaxpr(batched)(*args))
        monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
        assert "scan" in str(jax.make_jaxpr(make_certify_batch(CertifyConfig(), V))(*args))
        monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    np.testing.assert_array_equal(vmapped.status, one_at_a_time.status)
    np.testing.assert_allclose(vmapped.loss, one_at_a_time.loss, rtol=0, atol=1e-13)
    np.testing.assert_allclose(vmapped.hess_min, one_at_a_time.hess_min, rtol=0, atol=1e-10)
    cfg = config.from_dict({"name": "b", "seed": 0, "runs": 8, "memory_budget_mb": 256,
                            "grid": {"d": [10, 40], "k": "d"}})
    small, large = cfg.cells()
    assert certify_block(cfg, small) == CERTIFY_BLOCK  # 64 Hessians of 100×100 fit in 256 MB
    per = certify_bytes_per_run(40, 40, 40)
    assert certify_block(cfg, large) == 256 * 2**20 // per < CERTIFY_BLOCK
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert certify_block(cfg, large) == CPU_BLOCK  # one run at a time on a CPU: no memory bound needed


def test_hessians_of_a_batch_are_each_point_s_own_whatever_the_batch():
    """:func:`jaxsym.certify.exact.hessians` (the hand-off's batched Hessians): each equals the Hessian of its
    point alone (the closed form, to rounding) and against second differences of the closed-form gradient, and
    a point's Hessian has the same bits in a batch of 1, 3 or 40 (one point at a time inside a call on a CPU)."""
    from jaxsym.certify.exact import hessians

    k = 5
    V = np.eye(k)
    W = np.random.default_rng(3).normal(size=(40, k, k)) / np.sqrt(k)
    H = hessians(W, V)
    assert H.shape == (40, k * k, k * k)
    with jax.enable_x64(True):
        H1 = np.asarray(model.hessian(jnp.asarray(W[7]), jnp.asarray(V)))
        eps = 1e-6
        fd = np.stack([(np.asarray(model.grad(jnp.asarray(W[7] + eps * e.reshape(k, k)), jnp.asarray(V)))
                        - np.asarray(model.grad(jnp.asarray(W[7] - eps * e.reshape(k, k)), jnp.asarray(V))))
                       .reshape(-1) / (2 * eps) for e in np.eye(k * k)])
    np.testing.assert_allclose(H[7], H1, atol=1e-12)
    np.testing.assert_allclose(H[7], fd, atol=1e-6)
    np.testing.assert_array_equal(hessians(W[7:8], V)[0], H[7])
    np.testing.assert_array_equal(hessians(W[5:8], V)[2], H[7])


def test_hessian_distances_are_the_norms_of_the_hessians_differences_and_do_not_depend_on_the_batch():
    """The test per orbit's ‖H(X) − H_ref‖_F reduced inside a program equals the norm taken of the Hessians on the
    host (a second computation), and a point's value is the same bits alone and in a batch of 37 (two calls)."""
    from jaxsym.certify.exact import hessian_distances, hessians

    rng = np.random.default_rng(3)
    k = d = 5
    V = np.eye(d)
    Xs = rng.normal(size=(37, k, d)) / np.sqrt(d)
    H_ref = hessians(rng.normal(size=(1, k, d)) / np.sqrt(d), V)[0]
    got = hessian_distances(Xs, H_ref, V)
    want = np.linalg.norm(hessians(Xs, V) - H_ref[None], axis=(1, 2))
    np.testing.assert_allclose(got, want, rtol=1e-13)
    alone = np.array([hessian_distances(Xs[i:i + 1], H_ref, V)[0] for i in (0, 20, 36)])
    assert np.array_equal(alone, got[[0, 20, 36]])


@pytest.mark.parametrize("k,d", [(6, 6), (9, 7)])
def test_a_point_s_hessian_has_the_same_bits_in_blocks_of_every_size_used(k, d, monkeypatch):
    """Hessians and Hessian distances come in calls of a fixed number of points (8 on a CPU, 32 on an accelerator,
    fewer where memory is short): a point's values are the same bits in blocks of 4, 8 and 32."""
    from jaxsym.certify import exact

    rng = np.random.default_rng(k)
    V = np.eye(k, d)
    Xs = rng.normal(size=(35, k, d)) / np.sqrt(d)
    H_ref = exact.hessians(Xs[:1], V)[0]
    got = {}
    for block in (4, 8, 32):
        monkeypatch.setattr(exact, "_hessian_block", lambda Ws, b=block: b)
        got[block] = (exact.hessians(Xs, V), exact.hessian_distances(Xs, H_ref, V))
    for block in (4, 8):
        np.testing.assert_array_equal(got[block][0], got[32][0])
        np.testing.assert_array_equal(got[block][1], got[32][1])
