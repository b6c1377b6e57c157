"""Families of critical points: restricted loss/gradient, continuation, block spectra."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import block_spectrum

from jaxsym.fixedpoints.families import integer_curve, to_block_form
from jaxsym.fixedpoints.solve import solve
from jaxsym.fixedpoints.space import Space
from jaxsym.fixedpoints.spectrum import classify
from jaxsym.landscape import model
from jaxsym.symmetry.group import apply, find_element, isotropy, random_element
from jaxsym.symmetry.spectra import predicted_multiplicities, spectrum


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _random_x(space, rng):
    x = rng.normal(size=space.size) * 0.3
    x[: space.r] += 1.0
    return np.where(space.free, x, 0.0)


@pytest.mark.parametrize("blocks", [(6, 1), (5, 2), (4, 2, 1), (3, 3)])
def test_restricted_loss_and_gradient_are_the_full_ones(blocks):
    rng = np.random.default_rng(len(blocks))
    space = Space(blocks)
    x = _random_x(space, rng)
    W = space.embed(jnp.asarray(x))
    V = jnp.eye(space.k)
    assert float(space.loss(jnp.asarray(x))) == pytest.approx(float(model.loss(W, V)), rel=1e-12)
    # restricted gradient = Eᵀ ∇F, i.e. the projection of the full gradient onto Fix(H) in x-coordinates
    E = np.asarray(jax.jacobian(space.embed)(jnp.asarray(x))).reshape(space.k**2, -1)
    full = np.asarray(model.grad(W, V)).ravel()
    g = np.asarray(jax.grad(space.loss)(jnp.asarray(x)))
    np.testing.assert_allclose(g, E.T @ full, atol=1e-11)
    # the full gradient lies in Fix(H): it equals its projection E (EᵀE)⁻¹ Eᵀ ∇F
    P = E[:, space.free]
    proj = P @ np.linalg.solve(P.T @ P, P.T @ full)
    np.testing.assert_allclose(proj, full, atol=1e-11)
    assert float(space.full_grad_norm(jnp.asarray(x))) == pytest.approx(np.linalg.norm(full), rel=1e-10)


def _sweep_like_point(blocks, seed=0):
    """A critical point with isotropy Δ(Π S_p) found independently by full-space gradient descent
    inside Fix(H) then a full-space polish (no use of the restricted code)."""
    from jaxsym.certify.exact import polish
    space = Space(blocks)
    k = space.k
    # the published form of the Δ(S_{k−1}×S_1) family (Safran, Yehudai & Shamir) scaled as a start
    x = np.zeros(space.size)
    x[: space.r] = [1.0] * (space.r - 1) + [-0.6]
    if space.r == 2:
        x[2 * space.r + 1] = 0.19   # c_21: row of the last block, columns of the big block
        x[2 * space.r + 2] = 0.26
    W = np.asarray(space.embed(jnp.asarray(x)))
    Wp, _ = polish(jnp.asarray(W), jnp.eye(k), iters=80, tol=1e-13)
    return np.asarray(Wp)


def test_continuation_reaches_a_certified_critical_point_of_the_full_problem():
    start = _sweep_like_point((6, 1))
    assert np.linalg.norm(np.asarray(model.grad(jnp.asarray(start), jnp.eye(7)))) < 1e-10
    space, x = to_block_form(start)
    assert space.blocks == (6, 1)
    pts = integer_curve(space, x, 12)
    assert [p.k for p in pts] == list(range(7, 13)) and all(p.grad_norm <= 1e-11 for p in pts)
    last = pts[-1]
    W = np.asarray(Space((11, 1)).embed(jnp.asarray(last.x)))
    V = jnp.eye(12)
    assert np.linalg.norm(np.asarray(model.grad(jnp.asarray(W), V))) < 1e-10   # full closed form
    assert float(model.loss(jnp.asarray(W), V)) == pytest.approx(last.loss, rel=1e-10)
    assert isotropy(W).name == "Δ(S11×S1)"
    # an independent full-space solve at k = 12 from a nearby symmetric start finds the same point
    other = _sweep_like_point((11, 1))
    g = random_element(np.random.default_rng(1), 12, 12)
    assert find_element(apply(g, other), W, tol=1e-6) is not None


@pytest.mark.parametrize("blocks", [(6, 1), (5, 2), (9, 1), (7, 2, 1), (12, 3)])
def test_block_spectrum_equals_dense_spectrum(blocks):
    rng = np.random.default_rng(sum(blocks))
    space = Space(blocks)
    x = _random_x(space, rng)
    bs = block_spectrum(space, x)
    assert int(bs.mults.sum()) == space.k**2
    assert sorted(bs.mults.tolist()) == predicted_multiplicities(list(blocks))
    W = np.asarray(space.embed(jnp.asarray(x)))
    dense = np.linalg.eigvalsh(np.asarray(model.hessian(jnp.asarray(W), jnp.eye(space.k))))
    expanded = np.sort(np.repeat(bs.values, bs.mults))
    np.testing.assert_allclose(expanded, dense, atol=1e-9)


def test_block_spectrum_at_a_critical_point_k40():
    """The package's block spectrum (nested spaces) at a family's point at k = 40 against the dense Hessian."""
    start = _sweep_like_point((6, 1))
    space, x = to_block_form(start)
    pts = integer_curve(space, x, 40)
    sp40 = Space((39, 1))
    c = classify(sp40, pts[-1].x)
    W = np.asarray(sp40.embed(jnp.asarray(pts[-1].x)))
    dense = spectrum(W, np.eye(40), tol=1e-7)
    assert c.eig_mults == [m for _, m in dense] and sum(c.eig_mults) == 40 * 40
    np.testing.assert_allclose(c.eig_values, [v for v, _ in dense], atol=1e-9)
    assert c.hess_min > 0 and c.index == 0  # still a minimum at k = 40


def test_newton_reports_failure():
    space = Space((3, 1))
    assert not solve(space, np.full(space.size, np.nan)).converged


def test_family_cli_writes_tables_and_plot(tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from jaxsym.cli import app

    W = _sweep_like_point((6, 1))
    pd.DataFrame([{"d": 7, "k": 7, "orbit": 1, "status": "spurious", "loss": float(model.loss(jnp.asarray(W),
                   jnp.eye(7))), "isotropy": "Δ(S6×S1)", "neuron_orbits": [6, 1], "W": W.ravel().tolist()}]
                 ).to_parquet(tmp_path / "minima.parquet")
    res = CliRunner().invoke(app, ["family", str(tmp_path), "--k", "7", "--k-max", "14", "--spectra-at", "10,14"])
    assert res.exit_code == 0, res.output
    out = next((tmp_path / "families").iterdir())
    table = pd.read_parquet(out / "family.parquet")
    spectra = pd.read_parquet(out / "spectra.parquet")
    from jaxsym.io.columns import FAMILY_CURVE, SPECTRA

    assert list(table.columns) == [c.name for c in FAMILY_CURVE] and list(spectra.columns) == [c.name for c in SPECTRA]
    assert table["k"].max() == 14 and (table["grad_norm"] <= 1e-11).all()
    assert {10, 14} <= set(spectra["k"]) and (spectra["full_grad_norm"] < 1e-10).all()
    assert (out / "family.png").stat().st_size > 10_000
    assert "a minimum from k =" in res.output


def test_continued_point_is_the_one_the_sweep_pipeline_finds():
    """Train k = d = 8 runs with the engine and certify them (the sweep's pipeline); the Δ(S7×S1)
    spurious minimum found must equal the family point continued from k = 7, modulo the group, with the
    same loss and isotropy."""
    from jaxsym.certify.exact import STATUSES, make_certify_batch
    from jaxsym.config import CertifyConfig, TrainConfig
    from jaxsym.engine.descent import make_train_from

    V = jnp.eye(8)
    with jax.enable_x64(False):
        train = jax.jit(jax.vmap(make_train_from(TrainConfig(steps=6000, grad_tol=1e-5), V.astype(jnp.float32))))
        rng = np.random.default_rng(3)
        res = train(jnp.asarray(rng.normal(size=(48, 8, 8)) / np.sqrt(8), jnp.float32))
    cert = make_certify_batch(CertifyConfig(), V)(res.W.astype(jnp.float64), res.grad_norm.astype(jnp.float64),
                                                 res.diverged)
    found = [np.asarray(cert.W[i]) for i in range(48) if STATUSES[int(cert.status[i])] == "spurious"
             and isotropy(np.asarray(cert.W[i])).name == "Δ(S7×S1)"]
    assert found, "no Δ(S7×S1) minimum among 48 runs"
    space, x = to_block_form(_sweep_like_point((6, 1)))
    pts = integer_curve(space, x, 8)
    W8 = np.asarray(Space((7, 1)).embed(jnp.asarray(pts[-1].x)))
    assert find_element(found[0], W8, tol=1e-7) is not None
    assert float(model.loss(jnp.asarray(found[0]), V)) == pytest.approx(pts[-1].loss, rel=1e-9)


def test_numpy_block_sizes_work_at_large_k():
    """Issue 17's bug: numpy integer block sizes overflowed in irrep_dim at k = 50."""
    import numpy as np

    from jaxsym.fixedpoints.space import Space
    from jaxsym.symmetry.spectra import irrep_dim

    for n in (10, 50, 200):
        # dimensions of [n−1, 1] and [n−2, 2] by their closed forms (not the hook length formula)
        assert irrep_dim((np.int64(n - 1), np.int64(1))) == n - 1
        assert irrep_dim((np.int64(n - 2), np.int64(2))) == n * (n - 3) // 2
    space = Space((np.int64(48), np.int64(2)))
    assert space.blocks == (48, 2) and all(type(p) is int for p in space.blocks)


@settings(max_examples=6, deadline=None)
@given(st.floats(2.0, 8.0), st.integers(0, 2**31 - 1))
def test_every_blocks_size_is_the_same_at_every_k(log_k, seed):
    """Each isotypic block has as many eigenvalues at k = 10^2 … 10^8 as at k = 12 (the sizes are those of the
    blocks' subspaces, not of k): the orthogonal complements are found at every scale of the neuron counts.
    The family (k − 3, 2, 1) has every kind of block (std, [p−2,1,1], [p−2,2], std⊗std); its programs are those
    of the (7, 2, 1) case above. With extra neurons: tests/test_wide.py."""
    from jaxsym.fixedpoints.families import blocks_at
    from jaxsym.fixedpoints.spectrum import components

    tail = (2, 1)
    space = Space(blocks_at(tail, 12.0))
    x = _random_x(space, np.random.default_rng(seed))
    small = {c.label: len(c.values) for c in components(space.p, x) if c.mult > 0}
    large = {c.label: len(c.values) for c in components(blocks_at(tail, 10.0**log_k), x) if c.mult > 0}
    assert large == small


@functools.cache
def _unrolled():
    """The restricted loss with the kernel's series unrolled, and ``jax.hessian`` of it (jitted)."""
    from jaxsym.fixedpoints.space import loss

    f = functools.partial(loss, kern=model.kernel_from_inner)
    return jax.jit(f), jax.jit(jax.hessian(f))


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 2**31 - 1), st.booleans())
def test_the_restricted_hessian_with_the_rolled_series_is_the_unrolled_ones(seed, near):
    """The restricted loss and :func:`~jaxsym.fixedpoints.space.hessian` (the kernel's series in a loop) equal
    the loss and ``jax.hessian`` with the series unrolled, up to rounding, also where the series is what is
    evaluated (rows nearly aligned: ``near``). (A space with an extra neuron: both parts of the loss.)"""
    from jaxsym.fixedpoints.spectrum import _hessian, _loss_jit

    sp = Space((2, 1), extra=1)
    rng = np.random.default_rng(seed)
    z = rng.normal(size=sp.size) * (1e-3 if near else 0.3)
    z[: sp.r] += 1.0  # near: every row within ~1e-3 of its teacher neuron
    z = jnp.asarray(np.where(sp.free, z, 0.0))
    args = sp.args(jnp.float64)
    unrolled, unrolled_hessian = _unrolled()
    assert float(_loss_jit(z, *args)) == pytest.approx(float(unrolled(z, *args)), rel=1e-14, abs=1e-15)
    want = np.asarray(unrolled_hessian(z, *args))
    got = np.asarray(_hessian(z, *args))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
