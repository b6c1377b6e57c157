"""Families in continuous k: the block spectrum from nested fixed-point spaces, curves, births, limits."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from oracles import block_spectrum
from typer.testing import CliRunner

from jaxsym.fixedpoints.atlas import critical_points
from jaxsym.fixedpoints.families import (
    bisect_sign,
    blocks_at,
    follow_family,
    integer_curve,
    loss_limit,
    series_fit,
    series_limit,
    solve_at,
    trace_family,
)
from jaxsym.fixedpoints.space import Space, loss, loss_precise
from jaxsym.fixedpoints.spectrum import classify, components
from jaxsym.io.columns import FAMILIES
from jaxsym.landscape import model


def _with_mults(comps):
    return np.sort(np.concatenate([np.repeat(c.values, round(c.mult)) for c in comps]))


def eigenvalue_precision(W: np.ndarray, values: np.ndarray) -> float:
    """The absolute precision of float64 Hessian eigenvalues at the point ``W`` (k, k) with spectrum ``values``.

    Rounding alone gives ``k²·ε·‖H‖`` (an eigensolver's backward error on a k²×k² matrix). The kernel adds a
    term ``q^{3/2}/(2πg²)·ψ`` in the Gram determinant ``q = ‖u‖²‖v‖² − g²`` of two rows: where the rows are
    nearly parallel (angle θ), ``q`` is a difference of two numbers of size ``‖u‖²‖v‖²`` and carries a
    rounding error ``δq ≈ ε‖u‖²‖v‖²``, and its second derivatives ``(3/2)q^{1/2}∇²q + …`` then carry
    ``≈ δq/√q`` — relative to the Hessian's scale ``ε/sin θ``, and ``√ε`` once ``sin θ ≤ √ε`` (exactly
    parallel rows, where the computed ``q`` is pure rounding). Rows aligned with their own teacher row do not
    count: the restricted loss passes that Gram determinant in a cancellation-free form."""
    eps = np.finfo(np.float64).eps
    k = W.shape[0]
    norms = np.linalg.norm(W, axis=1)
    U = W[norms > 0] / norms[norms > 0, None]
    cos = np.clip(np.abs(U @ U.T), 0.0, 1.0)
    np.fill_diagonal(cos, 0.0)
    sin_min = np.sqrt(1.0 - cos.max(initial=0.0) ** 2)
    scale = np.abs(values).max()
    return scale * (k * k * eps + eps / max(sin_min, np.sqrt(eps)))


@pytest.mark.parametrize("blocks", [(7,), (6, 1), (5, 2), (4, 3, 1)])
def test_components_equal_the_block_spectrum_at_integer_k(blocks):
    """At integer k the nested-fixed-space blocks, with their multiplicity polynomials, give the k² eigenvalues
    of the Hessian-vector-product block spectrum, for every point the atlas finds in the space (the global
    minimum included: its rows are aligned with the teacher's)."""
    k = sum(blocks)
    pts = critical_points(blocks, starts=6)
    assert pts
    for pt in pts:
        got = _with_mults(components(blocks, pt.x))
        bs = block_spectrum(Space(blocks), pt.x)
        ref = np.sort(np.repeat(bs.values, bs.mults))
        assert len(got) == k * k == len(ref)
        np.testing.assert_allclose(got, ref, rtol=0, atol=eigenvalue_precision(pt.W, ref))


def test_global_minimum_spectrum_against_the_dense_hessian():
    """At W = I the blocks equal the eigenvalues of the dense closed-form Hessian (a second formula)."""
    k = 6
    got = _with_mults(components((k,), np.array([1.0, 0.0, 0.0])))
    with jax.enable_x64(True):
        dense = np.linalg.eigvalsh(np.asarray(model.hessian(jnp.eye(k), jnp.eye(k))))
    np.testing.assert_allclose(got, dense, atol=1e-9)


def test_smooth_kernel_equals_the_geometric_kernel():
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        for _ in range(20):
            u, v = rng.normal(size=4), rng.normal(size=4)
            for w in (v, 3 * u + 1e-7 * v, -2 * u + 1e-3 * v, u):
                a = float(model.kernel_from_inner(jnp.linalg.norm(u), jnp.linalg.norm(w), jnp.dot(u, w)))
                b = float(model.kernel(jnp.asarray(u), jnp.asarray(w)))
                assert abs(a - b) <= 1e-14 * max(1.0, abs(b))


def test_continuous_curve_agrees_with_integer_continuation():
    """Tracing a family in half steps of k passes through the points that integer continuation
    (jaxsym.fixedpoints.families.integer_curve) finds at each integer."""
    pt = next(p for p in critical_points((7, 1), starts=8) if p.index == 0 and p.loss > 1e-8)
    integer = {p.k: p for p in integer_curve(Space((7, 1)), pt.x, 11)}
    curve, end, stopped = trace_family((1,), 8.0, pt.x, 11.0, step=0.5)
    assert end is None and stopped is None
    at = {round(c.k): c for c in curve if abs(c.k - round(c.k)) < 1e-12}
    assert set(at) == {8, 9, 10, 11}
    for kk, c in at.items():
        assert abs(c.loss - integer[kk].loss) <= 1e-12
        np.testing.assert_allclose(c.x, integer[kk].x, atol=1e-9)


def test_birth_found_by_bisection_brackets_the_integer_sign_change():
    """The Δ(S_{k−1}×S_1) family that descent reaches at k = 8: λ_min changes sign between two integers
    (checked with the dense Hessian of the embedded point); bisection puts the birth between them, and
    λ_min has opposite signs 1e-6 to either side of it."""
    pt = next(p for p in critical_points((7, 1), starts=8) if p.index == 0 and p.loss > 1e-8)
    curve = trace_family((1,), 8.0, pt.x, 3.0, step=0.25).points
    curve = sorted(curve, key=lambda c: c.k)
    pairs = [(a, b) for a, b in itertools.pairwise(curve) if np.sign(a.hess_min) != np.sign(b.hess_min)]
    assert len(pairs) == 1
    birth, err = bisect_sign((1,), *pairs[0])
    assert err <= 1e-8
    lo, hi = int(np.floor(birth)), int(np.ceil(birth))

    def dense_lambda_min(kk: int) -> float:
        c = min(curve, key=lambda c: abs(c.k - kk))
        with jax.enable_x64(True):
            W = Space((kk - 1, 1)).embed(jnp.asarray(c.x))
            return float(np.linalg.eigvalsh(np.asarray(model.hessian(W, jnp.eye(kk))))[0])

    assert dense_lambda_min(lo) < 0 < dense_lambda_min(hi)
    near = min(curve, key=lambda c: abs(c.k - birth)).x
    sides = []
    for kk in (birth - 1e-6, birth + 1e-6):
        sol = solve_at((1,), kk, near)
        assert sol.converged
        sides.append(classify(Space(blocks_at((1,), kk)), sol.z).hess_min)
    assert sides[0] < 0 < sides[1]


def test_series_fits_recover_known_limits():
    k = np.geomspace(100, 1e5, 40)
    assert loss_limit(k, 0.3 / k + 0.1 * k ** -1.5)[:2] == pytest.approx(("a/k", 0.3), abs=1e-6)
    kind, value, err = loss_limit(k, 0.18 + 0.2 * k ** -0.5 - 0.05 / k)
    assert kind == "constant" and abs(value - 0.18) < 1e-6 and err < 1e-6
    value, err = series_limit(k, 2.0 - 1.0 / np.sqrt(k))
    assert abs(value - 2.0) < 1e-9
    wild = np.random.default_rng(0).normal(size=len(k)) * k  # no limit at all
    assert loss_limit(k, wild)[0] == "unclear"
    kind, value, err = loss_limit(k, 0.05 * k + 0.3 * np.sqrt(k))  # grows like k: exponent → 1 from below
    assert kind == "grows" and 0.95 < value <= 1.0 and err < 0.05
    kind, value, _ = loss_limit(k, 0.7 * k ** 0.5 + 2.0)
    assert kind == "grows" and 0.45 < value < 0.5


def test_series_fit_recovers_a_known_series_coefficients():
    """The first three coefficients of a known series in k^{-1/2}, each within the error the fit states."""
    k = np.geomspace(100, 1e7, 60)
    truth = np.array([0.25, -0.3, 0.7])
    y = truth[0] + truth[1] * k**-0.5 + truth[2] / k - 2.0 * k**-1.5 + 5.0 * k**-2.0
    c, err = series_fit(k, y, terms=6, n=3)
    assert np.all(np.abs(c - truth) <= np.maximum(err, 1e-12)) and np.all(err < [1e-10, 1e-8, 1e-6])
    assert series_limit(k, y, 6) == (c[0], err[0])


def test_precise_loss_keeps_the_digits_float64_loses():
    pt = next(p for p in critical_points((7, 1), starts=8) if p.index == 0 and p.loss > 1e-8)
    p8 = blocks_at((1,), 8.0)
    with jax.enable_x64(True):
        f64 = float(loss(jnp.asarray(pt.x), jnp.asarray(p8)))
    assert abs(loss_precise(Space(p8), pt.x) - f64) <= 1e-14
    big = Space(blocks_at((1,), 1e5))
    assert loss_precise(big, pt.x) == pytest.approx(loss_precise(big, pt.x, digits=100), rel=1e-14)


@pytest.mark.slow
def test_asymptotic_fit_recovers_the_global_minimum_spectrum():
    """The bounded Hessian eigenvalues of the global minimum W = I, fitted in powers of k^{-1/2} up to
    k = 10⁴, tend to 1/4 − 1/(2π) and 1/4 + 1/(2π) (the limits stated by Arjevani & Field; the first is also
    the smallest eigenvalue in Safran et al.'s data for every k = 6…100)."""
    fam = follow_family((), 10.0, np.array([1.0, 0.0, 0.0]), k_max=20, asymptotic_to=1e4)
    assert fam.limit[0] == "zero"
    limits = [v for _, v, e in fam.bounded_eigs if e < 1e-6]
    for target in (0.25 - 1 / (2 * np.pi), 0.25 + 1 / (2 * np.pi)):
        assert min(abs(v - target) for v in limits) < 1e-8


def test_atlas_cli_follows_families(tmp_path):
    from jaxsym.cli import app

    res = CliRunner().invoke(app, ["atlas", "--k", "5", "--max-blocks", "2", "--starts", "6", "--k-max", "7",
                                   "--asymptotic-to", "60", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    fams = pd.read_parquet(tmp_path / "families.parquet")
    assert {"isotropy", "family", "birth_k", "death_k", "limit_kind", "limit_value", "limit_error"} <= set(fams.columns)
    table = pd.read_parquet(tmp_path / "atlas.parquet")
    assert {5, 6, 7} <= set(table["k"]) and table["k"].max() == 7  # and lower k down to where families end
    assert set(table.loc[table["k"] != 5, "family"]) <= set(fams["family"])
    assert (tmp_path / "families.png").exists() and "Families in continuous k" in (tmp_path / "atlas.md").read_text()


@pytest.mark.slow  # ~40 s; run with -m slow
def test_integer_rows_of_families_match_dense_hessians():
    """The rows a families run adds at integer k (k ≤ 12 here): full-space ‖∇F‖ ≤ 1e-10 by the closed form,
    and the Hessian index and λ_min that the dense closed-form Hessian gives."""
    from jaxsym.fixedpoints.atlas import atlas, families

    table = atlas(7, max_blocks=2, starts=6)
    fams, curves, objs = families(table, k_max=12.0, asymptotic_to=12.0)
    assert list(fams.columns) == [c.name for c in FAMILIES]  # as documented (io/columns.toml)
    assert len(fams) == len(objs) == int(table["kind"].isin(["global", "spurious"]).sum()) and len(curves)
    for row in curves.itertuples():
        (point,) = [c for c in objs[row.family].curve if abs(c.k - row.k) < 1e-9]
        with jax.enable_x64(True):
            W = Space(tuple(row.blocks)).embed(jnp.asarray(point.x))
            g = float(jnp.linalg.norm(model.grad(W, jnp.eye(row.k))))
            eig = np.linalg.eigvalsh(np.asarray(model.hessian(W, jnp.eye(row.k))))
        assert g <= 1e-10
        assert row.index == int((eig < -1e-6).sum())
        assert abs(row.hess_min - eig[0]) <= 1e-8
