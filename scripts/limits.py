#!/usr/bin/env python3
"""Limits of the families of an atlas in many digits, and closed forms for them (docs/atlas.md).

    .venv/bin/jaxsym atlas --k 10 --k-max 100 --out results/atlas10
    .venv/bin/python scripts/limits.py results/atlas10 [--k-to 1e12] [--digits 80] [--out results/atlas10/limits.json]

For every family of ``families.parquet`` whose float64 limit is ``a/k`` or ``constant``, the family is followed
from its atlas point at k to ``--k-to`` in ``--digits`` digits (:func:`jaxsym.fixedpoints.precise.follow_precise`,
×1.25 per step), its limit fitted in powers of k^{-1/2} with the error the leave-out fits support
(:func:`~jaxsym.fixedpoints.precise.limit_precise`), and an integer relation with 1, 1/π, 1/π², π, √2, √3 looked
for (:func:`~jaxsym.fixedpoints.precise.identify`). The a/k constants are also given as multiples of the first
one (a ratio kept when it is a fraction with a denominator below 100 to the digits of both), and the series'
next coefficients c₁, c₂, c₃ (of y ≈ Σ c_j k^{−j/2}, y = k·F or F) with their errors. With ``--parameters``, the
same series for every free parameter of the family's point (``a_s``: a neuron's own coordinate in block s,
``b_s``: another coordinate of its block, ``c_st``: a coordinate of block t; block 1 is the one that grows with k),
each limit with a closed form looked for likewise. With ``--eigenvalues``, the series of every bounded Hessian
eigenvalue (:func:`jaxsym.fixedpoints.families.bounded_series`): the float64 isotypic blocks at the many-digit
points rounded to float64, for 100 ≤ k ≤ ``--eig-k-to`` (float64 blocks hold about 11 digits there), fitted
with 6 terms; each limit compared with the global minimum's ``1/4 − 1/(2π)``, ``1/4``, ``1/4 + 1/(2π)`` and 0
(no PSLQ: ten digits are too few for an integer-relation search over the basis), and each c₁ with 0 and
m/π, m/π² for 0 < |m| ≤ 4. Prints Markdown tables and
writes the values (as strings) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pandas as pd

from jaxsym.fixedpoints.families import bounded_series
from jaxsym.fixedpoints.precise import (
    follow_precise,
    free_parameters,
    identify,
    limit_precise,
    series_precise,
    supported,
)
from jaxsym.fixedpoints.space import Space

# the global minimum's bounded eigenvalues (docs/atlas.md), the candidates for the families' limits
EIGEN_CANDIDATES = {"1/4 − 1/(2π)": 0.25 - 1 / (2 * np.pi), "1/4": 0.25, "1/4 + 1/(2π)": 0.25 + 1 / (2 * np.pi),
                    "0": 0.0}
# the candidates for the k^{-1/2} coefficient c₁: 0 and m/π, m/π² for 0 < |m| ≤ 4
C1_CANDIDATES = {"0": 0.0, **{f"{m}/π{p}": m / np.pi ** (2 if p else 1) for m in range(-4, 5) if m
                               for p in ("", "²")}}


def parameter_names(r: int) -> list[str]:
    """Names of the ``2r + r²`` parameters ``(a[r], b[r], c[r, r])`` of a space of r blocks, in order."""
    return ([f"a_{s + 1}" for s in range(r)] + [f"b_{s + 1}" for s in range(r)]
            + [f"c_{s + 1}{t + 1}" for s in range(r) for t in range(r)])


def closed_form(value: object, error: object, digits: int) -> str:
    """The closed form of ``value`` that PSLQ finds within ``error`` (:func:`supported`'s), "0" when the value is
    below its error, or "none found"."""
    error = supported(value, error, digits)[0]
    with mpmath.workdps(digits):
        if abs(value) <= error:
            return "0"
        found = identify(value, error)
    return found[0] if found else "none found"


def parameter_rows(family: int, isotropy: str, pts: list, names: list[str], digits: int) -> list[dict[str, object]]:
    """One row per free parameter: its series' c₀, c₁, c₂ with their errors, and a closed form for c₀ and for c₂
    (the 1/k term) where one is found (zero where the coefficient is below its error)."""
    rows = []
    ks = [p.k for p in pts]
    for j, name in enumerate(names):
        coefficients, errors, _ = series_precise(ks, [p.v[j] for p in pts], digits=digits)
        err, shown = supported(coefficients[0], errors[0], digits)
        rows.append({"family": family, "isotropy": isotropy, "parameter": name,
                     "limit": mpmath.nstr(coefficients[0], max(shown, 1)), "error": mpmath.nstr(err, 2),
                     "closed_form": closed_form(coefficients[0], errors[0], digits),
                     "c2_closed_form": closed_form(coefficients[2], errors[2], digits),
                     **{f"c{i}": f"{mpmath.nstr(c, 10)} ± {mpmath.nstr(e, 1)}"
                        for i, (c, e) in enumerate(zip(coefficients[1:3], errors[1:3], strict=True), start=1)}})
    return rows


def eigenvalue_rows(family: int, isotropy: str, tail: tuple[int, ...], pts: list, k_to: float
                    ) -> list[dict[str, object]]:
    """One row per bounded Hessian eigenvalue of the family: its series' c₀, c₁, c₂ with their errors (float64
    blocks at the many-digit points with 100 ≤ k ≤ ``k_to``), and the nearest of :data:`EIGEN_CANDIDATES`."""
    free = free_parameters(tail)
    sel = [p for p in pts if 100 <= p.k <= k_to]
    xs = []
    for p in sel:
        x = np.zeros(len(free))
        x[free] = [float(v) for v in p.v]
        xs.append(x)
    rows = []
    for label, c, e in bounded_series(tail, np.array([p.k for p in sel]), xs, terms=6, n=3):
        name, value = min(EIGEN_CANDIDATES.items(), key=lambda kv: abs(kv[1] - c[0]))
        name1, value1 = min(C1_CANDIDATES.items(), key=lambda kv: abs(kv[1] - c[1]))
        rows.append({"family": family, "isotropy": isotropy, "block": label,
                     **{f"c{i}": f"{c[i]:.12g} ± {e[i]:.1g}" for i in range(3)},
                     "nearest": name, "c0 − nearest": f"{c[0] - value:.1g}",
                     "within error": bool(abs(c[0] - value) <= e[0]),
                     "c1 nearest": name1, "c1 − nearest": f"{c[1] - value1:.1g}"})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("atlas", type=Path)
    ap.add_argument("--k-to", type=float, default=1e12)
    ap.add_argument("--digits", type=int, default=80)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--families", type=str, default=None, help="comma-separated family ids (default: all)")
    ap.add_argument("--parameters", action="store_true", help="also the series of every free parameter")
    ap.add_argument("--eigenvalues", action="store_true", help="also the series of every bounded eigenvalue")
    ap.add_argument("--eig-k-to", type=float, default=1e7, help="the largest k of the eigenvalue fits")
    a = ap.parse_args()
    fams = pd.read_parquet(a.atlas / "families.parquet")
    table = pd.read_parquet(a.atlas / "atlas.parquet")
    rows, prows, erows = [], [], []
    first_a = None
    for f in fams.itertuples():
        if f.limit_kind not in ("a/k", "constant"):
            continue
        if a.families is not None and int(f.family) not in {int(v) for v in a.families.split(",")}:
            continue
        k0 = int(f.k_start)
        at = table[(table["k"] == k0) & (table["family"] == f.family) & table["W"].notna()].iloc[0]
        space = Space(tuple(int(p) for p in at["space"]))
        x = space.project(np.asarray(at["W"], np.float64).reshape(k0, k0))
        t0 = time.perf_counter()
        pts = follow_precise(space.blocks[1:], float(k0), x, k_to=a.k_to, digits=a.digits)
        lim = limit_precise(pts, f.limit_kind, digits=a.digits)
        closed = identify(lim.value, lim.error)
        ratio = None
        if f.limit_kind == "a/k":
            if first_a is None:
                first_a = lim
            else:
                with mpmath.workdps(a.digits):  # the comparison at the values' precision
                    q = Fraction(str(mpmath.nstr(lim.value / first_a.value, 30))).limit_denominator(100)
                    off = abs(lim.value - q.numerator * first_a.value / q.denominator)
                    if off <= lim.error + mpmath.mpf(q.numerator) / q.denominator * first_a.error:
                        ratio = str(q)
        digits = max(lim.digits, 1)
        rows.append({"family": int(f.family), "isotropy": f.isotropy, "kind": f.limit_kind,
                     "float64": f"{f.limit_value:.6f} ± {f.limit_error:.0e}",
                     "limit": mpmath.nstr(lim.value, digits), "error": mpmath.nstr(lim.error, 2),
                     "digits": lim.digits, "closed_form": closed[0] if closed else "none found",
                     "closed_form_off": mpmath.nstr(closed[1], 2) if closed else "",
                     "ratio_to_first_a": ratio or "",
                     "series": "; ".join(f"c{j} = {mpmath.nstr(c, 10)} ± {mpmath.nstr(e, 1)}" for j, (c, e) in
                                         enumerate(zip(lim.coefficients[1:4], lim.coefficient_errors[1:4],
                                                       strict=True), start=1)),
                     "points": len(pts), "seconds": round(time.perf_counter() - t0)})
        print(rows[-1], flush=True)
        if a.parameters:
            names = [n for n, keep in zip(parameter_names(len(space.blocks)), free_parameters(space.blocks[1:]),
                                          strict=True) if keep]
            prows += parameter_rows(int(f.family), f.isotropy, pts, names, a.digits)
        if a.eigenvalues:
            erows += eigenvalue_rows(int(f.family), f.isotropy, space.blocks[1:], pts, a.eig_k_to)
    df = pd.DataFrame(rows)
    from jaxsym.report.summary import markdown

    print(markdown(df))
    if prows:
        print()
        print(markdown(pd.DataFrame(prows)))
    if erows:
        print()
        print(markdown(pd.DataFrame(erows)))
    if a.out is not None or rows:
        out = a.out or a.atlas / "limits.json"
        out.write_text(json.dumps({"k_to": a.k_to, "digits": a.digits, "rows": rows, "parameters": prows,
                                  "eigenvalues": erows},
                                  indent=1) + "\n")


if __name__ == "__main__":
    main()
