"""Families in many digits: the precise solve against the float64 one, the precision it keeps, the series limit
of a known series, and integer relations."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from jaxsym.fixedpoints.atlas import critical_points
from jaxsym.fixedpoints.families import solve_at
from jaxsym.fixedpoints.precise import (
    PrecisePoint,
    follow_precise,
    identify,
    limit_precise,
    precise_loss,
    solve_precise,
)
from jaxsym.fixedpoints.space import free_mask


@pytest.fixture(scope="module")
def minimum():
    """The Δ(S9×S1) spurious minimum at k = 10 from the atlas (float64)."""
    return next(p for p in critical_points((9, 1), starts=8) if p.index == 0 and p.loss > 1e-8)


def test_precise_solve_is_the_float64_point_and_critical_to_many_digits(minimum):
    free = free_mask(np.array([2.0, 1.0]))
    f64 = solve_at((1,), 12.0, minimum.x)
    assert f64.converged
    v = solve_precise((1,), 12, minimum.x[free], digits=60)
    np.testing.assert_allclose([float(t) for t in v], f64.z[free], atol=1e-11)
    with mpmath.workdps(60):
        g = [mpmath.diff(lambda *u: precise_loss((1,), 12, u, free), v, tuple(int(i == j) for i in range(5)))
             for j in range(5)]
        assert max(abs(x) for x in g) < mpmath.mpf(10) ** -30


def test_precise_solve_agrees_with_itself_at_two_precisions(minimum):
    free = free_mask(np.array([2.0, 1.0]))
    v60 = solve_precise((1,), 12, minimum.x[free], digits=60)
    v90 = solve_precise((1,), 12, v60, digits=90)
    with mpmath.workdps(90):
        assert max(abs(a - b) for a, b in zip(v60, v90, strict=True)) < mpmath.mpf(10) ** -35


def test_the_loss_keeps_its_digits_far_out_in_k(minimum):
    """At k = 10⁹ the loss (≈ a/k, the difference of three sums ≈ k²/2π) at 60 and at 90 digits agrees to
    about 60 − 27 digits: the cancellation costs three digits per decade of k, not all of them."""
    free = free_mask(np.array([2.0, 1.0]))
    pts = follow_precise((1,), 10.0, minimum.x, k_to=1e3, factor=2.0, digits=60)
    v = pts[-1].v
    with mpmath.workdps(60):
        lo = precise_loss((1,), mpmath.mpf(10) ** 9, v, free)
    with mpmath.workdps(90):
        hi = precise_loss((1,), mpmath.mpf(10) ** 9, v, free)
        assert abs(lo - hi) < mpmath.mpf(10) ** -30 * abs(hi)


def test_series_limit_of_a_known_series_and_its_error():
    """y = k·F = c₀ + c₁k^{−1/2} + c₂/k + … with c₀ = 1/3: the fit finds c₀ within its stated error, and the
    error is small; a constant limit likewise."""
    with mpmath.workdps(80):
        c = [mpmath.mpf(1) / 3, mpmath.mpf(2), mpmath.mpf(-5) / 7, mpmath.mpf(3), mpmath.mpf(1) / 11]
        ks = [10.0 * 1.25 ** i for i in range(120) if 10.0 * 1.25 ** i <= 1e12]
        y = [sum(cj * mpmath.mpf(k) ** (-mpmath.mpf(j) / 2) for j, cj in enumerate(c)) for k in ks]
        pts = [PrecisePoint(k, [], yi / k) for k, yi in zip(ks, y, strict=True)]
        lim = limit_precise(pts, "a/k")
        assert abs(lim.value - c[0]) <= lim.error < mpmath.mpf(10) ** -30
        for j in (1, 2, 3):  # the series itself, each coefficient within its own error
            assert abs(lim.coefficients[j] - c[j]) <= max(lim.coefficient_errors[j], mpmath.mpf(10) ** -25)
            assert lim.coefficient_errors[j] < mpmath.mpf(10) ** -15
        const = limit_precise([PrecisePoint(k, [], yi) for k, yi in zip(ks, y, strict=True)], "constant")
        assert abs(const.value - c[0]) <= const.error
    with pytest.raises(ValueError, match="kind"):
        limit_precise(pts, "grows")


def test_identify_finds_a_relation_and_refuses_a_number_without_one():
    with mpmath.workdps(40):
        v = mpmath.mpf(1) / 2 - 2 / mpmath.pi ** 2
        found = identify(v, mpmath.mpf(10) ** -30)
        assert found is not None and found[0] == "1/2 − 2·1/pi^2" and found[1] < mpmath.mpf(10) ** -30
        other = identify(mpmath.mpf("0.1234567891011121314151617181920"), mpmath.mpf(10) ** -28)
        assert other is None


def test_identify_works_with_few_digits():
    """A value known to 13 digits (PSLQ itself needs 53 bits of working precision): 4/π is found within its
    error, and a number without a relation is refused."""
    with mpmath.workdps(40):
        noisy = 4 / mpmath.pi + mpmath.mpf("3e-14")
        found = identify(noisy, mpmath.mpf(10) ** -13)
        assert found is not None and found[0] == "4·1/pi" and found[1] <= mpmath.mpf(10) ** -13
        assert identify(mpmath.mpf("0.3183391827364"), mpmath.mpf(10) ** -13) is None


@pytest.mark.slow  # ~2 min; run with -m slow
def test_precise_family_meets_the_float64_one_and_its_limit_the_float64_estimate(minimum):
    """The family of Δ(S_{k−1}×S_1) followed to k = 10¹⁰ in 80 digits against the float64 path of
    jaxsym.fixedpoints.families (float64 solves to k = 10⁵, the loss at them in 50 digits, a four-term fit): the
    losses agree where both are computed, and the float64 limit is right to the order of its stated error. That
    error is a leave-out estimate, not a bound: here the float64 value is 5.60e-6 low against a stated 5.56e-6."""
    from jaxsym.fixedpoints.families import follow_family

    fam = follow_family((1,), 10.0, minimum.x, k_max=100.0, asymptotic_to=1e5)
    assert fam.limit[0] == "a/k"
    pts = follow_precise((1,), 10.0, minimum.x, k_to=1e10)
    by_k = {round(p.k, 6): p for p in pts}
    for c in fam.curve:
        p = by_k.get(round(c.k, 6))
        if p is not None and c.k >= 100:
            assert abs(float(p.loss) - c.loss) <= 1e-12 * abs(c.loss)
    lim = limit_precise(pts, "a/k")
    assert lim.digits >= 15
    assert abs(float(lim.value) - fam.limit[1]) <= 2 * fam.limit[2]
