"""Students wider than the teacher (k = d + n): the restricted loss, split points and the critical points found,
checked in the full space with the closed forms and by independent means."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsym.fixedpoints.atlas import critical_points as narrow_points
from jaxsym.fixedpoints.space import Space
from jaxsym.fixedpoints.wide import classify, critical_points, follow, split_point, splits
from jaxsym.landscape import model

SPACES = [((3,), 1), ((2, 1), 2), ((3, 2, 1), 1), ((1, 1), 3), ((4, 1), 0), ((2, 2), 2)]


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(SPACES), st.integers(0, 2**31 - 1))
def test_restricted_loss_and_gradient_norm_equal_the_full_ones(space, seed):
    """F and ‖∇F‖ of the (k, d) matrix the parameters fill (closed forms in the full space)."""
    blocks, n = space
    sp = Space(blocks, extra=n)
    z = np.random.default_rng(seed).uniform(-1, 1, 2 * sp.r + sp.r ** 2 + sp.r) * sp.free
    with jax.enable_x64(True):
        W, V = sp.embed(jnp.asarray(z)), jnp.eye(sp.d)
        assert W.shape == (sp.d + n, sp.d)
        assert float(sp.loss(jnp.asarray(z))) == pytest.approx(float(model.loss(W, V)), abs=1e-12)
        assert float(sp.full_grad_norm(jnp.asarray(z))) == pytest.approx(
            float(jnp.linalg.norm(model.grad(W, V))), abs=1e-12)


def test_a_split_minimum_is_a_critical_point_with_the_same_loss_and_function():
    """Splitting the one-neuron block of a k = d critical point into n + 1 parallel copies keeps the network's
    function (checked on random inputs) and criticality (closed-form ‖∇F‖)."""
    pts = [p for p in narrow_points((6, 1), starts=16) if p.index == 0 and p.loss > 1e-8]
    assert pts
    p = pts[0]
    X = np.random.default_rng(0).normal(size=(50, 7))
    for n in (1, 2):
        z = split_point((6, 1), p.x, 1, n)
        pt = classify(Space((6, 1), extra=n), z, "split")
        assert pt.loss == pytest.approx(p.loss, abs=1e-12) and pt.grad_norm <= 1e-10
        f = lambda W: np.maximum(X @ np.asarray(W).T, 0).sum(axis=1)  # noqa: E731
        np.testing.assert_allclose(f(pt.W), f(p.W), atol=1e-9)


def test_splits_of_a_larger_block_set_a_neuron_apart_first():
    """From a two-block minimum, one split per block, each in a finer space (the neuron set apart, with its
    coordinate, moved last), each the same function of the correspondingly permuted inputs, and critical."""
    pts = [p for p in narrow_points((5, 2), starts=16) if p.loss > 1e-8]
    assert pts
    p = pts[0]
    X = np.random.default_rng(1).normal(size=(50, 7))
    out = splits((5, 2), p.W, 1)
    assert [b for b, _ in out] == [(4, 2, 1), (5, 1, 1)]
    f = lambda W, X: np.maximum(X @ np.asarray(W).T, 0).sum(axis=1)  # noqa: E731
    for (fine, z), moved in zip(out, (4, 6), strict=True):
        order = [i for i in range(7) if i != moved] + [moved]
        Xp = np.empty_like(X)
        Xp[:, order] = X
        pt = classify(Space(fine, extra=1), z, "split")
        np.testing.assert_allclose(f(pt.W, X), f(p.W, Xp), atol=1e-9)
        assert pt.loss == pytest.approx(p.loss, abs=1e-12) and pt.grad_norm <= 1e-10


def test_found_points_are_critical_and_a_wide_spurious_minimum_is_one():
    """k = 8 students of a 7-neuron teacher in Fix(Δ(S_6×S_1)×S_1): every point has full ‖∇F‖ ≤ 1e-10; the
    spurious minimum found is checked without the closed-form Hessian: the Hessian by central differences of the
    closed-form gradient is positive definite, and random small steps all raise the loss."""
    pts = critical_points((6, 1), 1, starts=24)
    assert pts and all(p.grad_norm <= 1e-10 for p in pts)
    spurious = [p for p in pts if p.index == 0 and p.loss > 1e-8]
    assert spurious
    p = spurious[0]
    with jax.enable_x64(True):
        V = jnp.eye(7)
        w0 = jnp.asarray(p.W).ravel()
        grad = jax.jit(lambda w: model.grad(w.reshape(8, 7), V).ravel())
        h = 1e-6
        E = jnp.eye(w0.size)
        H = jnp.stack([(grad(w0 + h * e) - grad(w0 - h * e)) / (2 * h) for e in E])
        assert np.linalg.eigvalsh(np.asarray((H + H.T) / 2))[0] > 0.5 * p.hess_min > 0
        rng = np.random.default_rng(0)
        for _ in range(20):
            step = rng.normal(size=w0.size)
            step *= 1e-3 / np.linalg.norm(step)
            assert float(model.loss((w0 + step).reshape(8, 7), V)) > p.loss


def test_continuation_in_d_meets_the_points_found_directly_and_in_n_keeps_the_function():
    """The k = d + 1 spurious minimum at d = 7, continued to d = 8 (first block growing in real steps), is the
    minimum a direct search at d = 8 finds (same loss, index 0); continued in n from 1 to 2 it keeps its loss (n
    parallel extra neurons sharing one row's worth: the same function) and is a saddle there."""
    p7 = next(p for p in critical_points((6, 1), 1, starts=24) if p.index == 0 and p.loss > 1e-8)
    p8 = next(p for p in critical_points((7, 1), 1, starts=24) if p.index == 0 and p.loss > 1e-8)
    up = follow((6, 1), 1, p7.z, d_to=8)
    assert list(up["d"]) == [7, 8] and (up["grad_norm"] <= 1e-10).all() and (up["index"] == 0).all()
    assert up["loss"].iloc[-1] == pytest.approx(p8.loss, abs=1e-12)
    wider = follow((6, 1), 1, p7.z, n_to=2)
    assert list(wider["n"]) == [1, 2] and wider["loss"].iloc[1] == pytest.approx(p7.loss, abs=1e-12)
    assert wider["index"].iloc[1] > 0
    with pytest.raises(ValueError, match="exactly one"):
        follow((6, 1), 1, p7.z)


def test_extra_neurons_must_be_a_non_negative_integer():
    with pytest.raises(ValueError, match="extra neurons"):
        Space((3,), extra=-1)
    with pytest.raises(ValueError, match="extra neurons"):
        critical_points((3,), 1.5)
    with pytest.raises(ValueError, match="one neuron"):
        split_point((2, 1), np.zeros(8), 0, 1)


def test_cli_atlas_with_extra_neurons_writes_the_wide_table(tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from jaxsym.cli import app

    res = CliRunner().invoke(app, ["atlas", "--k", "5", "--extra", "1", "--starts", "4", "--max-blocks", "1",
                                   "--out", str(tmp_path)])  # one block: few programs to compile
    assert res.exit_code == 0, res.output
    w = pd.read_parquet(tmp_path / "wide.parquet")
    from jaxsym.io.columns import WIDE

    assert list(w.columns) == [c.name for c in WIDE]  # as documented (io/columns.toml)
    assert len(w) and (w["k"] == 6).all() and (w["grad_norm"] <= 1e-10).all()
    assert set(w["origin"]) <= {"split", "random"}
    assert "Students of k = 5 + 1 neurons" in (tmp_path / "atlas.md").read_text()
    bad = CliRunner().invoke(app, ["atlas", "--k", "5", "--extra", "-1", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "--extra" in bad.output


@settings(max_examples=6, deadline=None)
@given(st.sampled_from(SPACES), st.integers(0, 2**31 - 1))
def test_the_many_digit_loss_is_the_same_formula(space, seed):
    """loss_precise swaps the kernel and the arithmetic of the one restricted loss: at small k, where float64
    keeps its digits, both agree, with extra neurons too."""
    from jaxsym.fixedpoints.space import loss_precise

    blocks, n = space
    sp = Space(blocks, extra=n)
    z = np.random.default_rng(seed).uniform(-1, 1, sp.size) * sp.free
    narrow = Space(blocks)
    with jax.enable_x64(True):
        f64 = float(sp.loss(jnp.asarray(z)))
        f64_narrow = float(narrow.loss(jnp.asarray(z[:narrow.size])))
    assert loss_precise(sp, z) == pytest.approx(f64, abs=1e-13)
    assert loss_precise(narrow, z[:narrow.size]) == pytest.approx(f64_narrow, abs=1e-13)


WIDE_SPACES = [((2, 1), 2), ((3, 2, 1), 1), ((4, 2), 2)]


@settings(max_examples=6, deadline=None)
@given(st.sampled_from(WIDE_SPACES), st.integers(0, 2**31 - 1))
def test_the_block_spectrum_of_a_wide_space_is_the_dense_hessians(space, seed):
    """At a random point of Fix(Δ(S_p) × S_n) the isotypic blocks (the extra neurons' std_n blocks included),
    each eigenvalue counted with its multiplicity, are the (k·d)-dimensional closed-form Hessian's eigenvalues."""
    from jaxsym.fixedpoints.spectrum import components

    blocks, n = space
    sp = Space(blocks, extra=n)
    z = np.random.default_rng(seed).uniform(-1, 1, sp.size) * sp.free
    comps = [c for c in components(sp.p, z, sp.extra) if c.mult > 0]
    mults = [round(c.mult) for c in comps]
    assert all(m == c.mult for m, c in zip(mults, comps, strict=True))
    got = np.sort(np.concatenate([np.repeat(c.values, m) for c, m in zip(comps, mults, strict=True)]))
    with jax.enable_x64(True):
        W = sp.embed(jnp.asarray(z))
        dense = np.linalg.eigvalsh(np.asarray(model.hessian(W, jnp.eye(sp.d))))
    assert len(got) == sp.k * sp.d
    np.testing.assert_allclose(got, dense, atol=1e-9 * max(1.0, np.abs(dense).max()))


@settings(max_examples=6, deadline=None)
@given(st.floats(2.0, 8.0), st.integers(0, 2**31 - 1))
def test_a_wide_spaces_blocks_have_the_same_size_at_every_d(log_d, seed):
    """With two extra neurons, each block (std_n and std_n⊗std included) has as many eigenvalues at d = 10^2 …
    10^8 as at d = 6: the complements are found at every scale of the neuron counts (the (4, 2) space above)."""
    from jaxsym.fixedpoints.families import blocks_at
    from jaxsym.fixedpoints.spectrum import components

    sp = Space((4, 2), extra=2)
    z = np.random.default_rng(seed).uniform(-1, 1, sp.size) * sp.free
    z[: sp.r] += 1.0
    small = {c.label: len(c.values) for c in components(sp.p, z, 2) if c.mult > 0}
    large = {c.label: len(c.values) for c in components(blocks_at((2,), 10.0**log_d), z, 2) if c.mult > 0}
    assert "std_n⊗std[0]" in small and large == small


def test_a_wide_family_in_continuous_d_is_born_where_the_dense_index_says():
    """The k = d + 1 spurious minimum of Fix(Δ(S_{d−1}×S_1)×S_1), followed in real d by the one family trace
    (extra neurons kept), is born once, between the integers where the dense Hessian's index turns to 0
    (:func:`follow` classifies there independently), located to 1e-8: the block λ_min changes sign across it."""
    from jaxsym.fixedpoints.families import follow_family, solve_at, space_at
    from jaxsym.fixedpoints.spectrum import classify as block_classify

    p7 = next(p for p in critical_points((6, 1), 1, starts=24) if p.index == 0 and p.loss > 1e-8)
    fam = follow_family((1,), 7.0, p7.z, k_max=9.0, asymptotic_to=9.0, extra=1)
    births = [(k, err) for k, what, err in fam.sign_changes if what == "birth"]
    assert len(births) == 1 and fam.extra == 1
    birth, err = births[0]
    dense = follow((6, 1), 1, p7.z, d_to=4)
    index = dict(zip(dense["d"], dense["index"], strict=True))
    lo = max(d for d, i in index.items() if i > 0)
    assert index[lo + 1] == 0 and lo < birth < lo + 1 and err <= 1e-8
    signs = []
    for d in (birth - 1e-6, birth + 1e-6):
        sol = solve_at((1,), d, p7.z, 1)
        assert sol.converged
        signs.append(np.sign(block_classify(space_at((1,), d, 1), sol.z).hess_min))
    assert signs == [-1, 1]
