"""Which critical points descent reaches: exact intervals, discovery curves and the Good–Turing unseen mass,
each checked against an independent computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from jaxsym.report.coverage import atlas_coverage, clopper_pearson, discovery, unseen


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 400), st.floats(0.0, 1.0), st.sampled_from([0.9, 0.95, 0.99]))
def test_exact_interval_is_where_the_binomial_tails_are_alpha(n, frac, level):
    """Clopper–Pearson bounds solve the binomial tail equations (checked with the binomial distribution): the
    lower bound leaves α/2 above x, the upper α/2 below; at x = 0 the one-sided upper bound leaves α at 0."""
    x = round(frac * n)
    lo, hi = (float(v[0]) for v in clopper_pearson([x], [n], level))
    a = 1 - level
    assert lo <= x / n <= hi
    if x > 0:
        assert binom.sf(x - 1, n, lo) == pytest.approx(a / 2, rel=1e-6, abs=1e-12)
    if 0 < x < n:
        assert binom.cdf(x, n, hi) == pytest.approx(a / 2, rel=1e-6, abs=1e-12)
    if x == 0:
        assert binom.pmf(0, n, hi) == pytest.approx(a, rel=1e-9)
        if n >= 20:  # the "rule of three" (−ln α / n, 3/n at 95%) for many runs
            assert hi == pytest.approx(-np.log(a) / n, rel=0.1)


def _runs(orbits: np.ndarray, cell: str = "c") -> pd.DataFrame:
    n = len(orbits)
    status = np.where(orbits < 0, "not_converged", np.where(orbits == 0, "global", "spurious"))
    return pd.DataFrame({"cell": cell, "d": 5, "k": 5, "m": 5, "target": "identity", "run": np.arange(n),
                         "orbit": orbits, "status": status})


def test_discovery_counts_the_distinct_orbits_seen_so_far():
    rng = np.random.default_rng(0)
    orbits = rng.choice([-1, 0, 1, 2, 3, 7], size=300, p=[0.1, 0.5, 0.2, 0.1, 0.07, 0.03])
    curve = discovery(_runs(orbits), points=25)
    assert curve["n"].iloc[-1] == 300 and (np.diff(curve["orbits"]) >= 0).all()
    for row in curve.itertuples():  # brute force: the set of orbits among the first n runs
        first = orbits[:row.n]
        assert row.orbits == len(set(first[first >= 0]))
        assert row.minima == len(set(first[first >= 0]))  # here every orbit is a minimum


def test_good_turing_estimates_the_mass_of_orbits_not_yet_seen():
    """Over many simulated sweeps of N runs from a distribution with a long tail, the mean of f₁/N is the mean
    probability of the orbits a sweep missed (the estimate is unbiased for the N−1 run sweep, close for N)."""
    rng = np.random.default_rng(1)
    p = 1.0 / np.arange(1, 201) ** 1.5
    p /= p.sum()
    est, true = [], []
    for _ in range(400):
        orbits = rng.choice(len(p), size=300, p=p)
        est.append(float(unseen(_runs(orbits))["unseen_mass"].iloc[0]))
        true.append(float(p[np.setdiff1d(np.arange(len(p)), orbits)].sum()))
    assert np.mean(est) == pytest.approx(np.mean(true), rel=0.05)


def test_coverage_joins_atlas_minima_with_sweep_orbits():
    """An atlas of three minima at k = 5 against a sweep cell: the one reached gets its runs, the one never
    reached the one-sided bound, and a sweep minimum missing from the atlas is listed after them."""
    runs = _runs(np.array([0] * 90 + [1] * 8 + [2] * 2))
    minima = pd.DataFrame({"cell": "c", "d": 5, "k": 5, "orbit": [0, 1, 2], "status": ["global", "spurious",
                           "spurious"], "loss": [0.0, 0.02, 0.05], "isotropy": ["ΔS5", "Δ(S4×S1)", "Δ(S3×S2)"]})
    atlas = pd.DataFrame({"k": 5, "kind": ["global", "minimum", "spurious", "saddle"],
                          "isotropy": ["ΔS5", "Δ(S4×S1)", "Δ(S2×S2×S1)", "S5"], "loss": [1e-16, 0.02 + 1e-12,
                                                                                         0.09, 0.3]})
    cov = atlas_coverage(atlas, runs, minima)
    assert list(cov["isotropy"]) == ["ΔS5", "Δ(S4×S1)", "Δ(S2×S2×S1)", "Δ(S3×S2)"]
    assert list(cov["reached"]) == [90, 8, 0, 2] and (cov["runs"] == 100).all()
    assert cov["atlas_loss"].isna().tolist() == [False, False, False, True]
    never = cov.iloc[2]
    assert never["share"] == 0 and never["hi"] == pytest.approx(1 - 0.05 ** (1 / 100))
    assert list(cov["kind"]) == ["global", "spurious", "spurious", "spurious"]  # "minimum": older atlas tables
