"""Families far out in k, in many digits: limits to tens of digits and closed forms for them.

In float64 a family's loss loses every digit above k ≈ 10⁴ (its three sums, each ≈ k²/2π, cancel to ≈ a/k) and
its critical point can only be located to ≈ ε·k^{3/2} (:func:`jaxsym.fixedpoints.solve.grad_tol_at`), so limits
fitted on ``k ≤ 10⁵`` keep five or six digits (:mod:`jaxsym.fixedpoints.families`). Here the same restricted loss
(:func:`jaxsym.fixedpoints.space.loss`, with the array namespace and kernel of mpmath) is solved in ``digits``
decimal digits:

- **Solve** (:func:`solve_precise`): Newton's method on ``∇_x F = 0`` over the free parameters
  (``mpmath.findroot``; the gradient by ``mpmath.diff``, itself evaluated in extra precision), to a gradient of
  ``10^{-(digits − 20)}``. With ``digits = 80`` the loss keeps about 80 − 3·log₁₀ k digits (≈ 44 at k = 10¹²).
- **Follow** (:func:`follow_precise`): from a float64 point at moderate k, geometric steps in k (× ``factor``) to
  ``k_to``, each predicted linearly in log k.
- **Limit** (:func:`limit_precise`): ``y(k) = k·F`` (for families whose loss vanishes like a/k) or ``F`` is fitted by
  ``Σ_{j<n} c_j k^{−j/2}`` on ``k ≥ k_from``; the value's error is the largest change of ``c_0`` over the other
  term counts and lower ends of the fit, so it states only the digits every variant agrees on.
- **Closed form** (:func:`identify`): an integer relation ``m·v + Σ m_i b_i = 0`` over a small basis
  (1, 1/π, 1/π², π, √2, √3) by PSLQ at the digits the error supports; kept only if the candidate, evaluated
  anew, lies within the error of the value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

from jaxsym.fixedpoints.space import free_mask, loss_mp

BASIS = ("1", "1/pi", "1/pi^2", "pi", "sqrt(2)", "sqrt(3)")  # the closed forms' building blocks (:func:`identify`)


def _mp() -> Any:
    import mpmath

    return mpmath


def free_parameters(tail: tuple[int, ...]) -> np.ndarray:
    """Which of the ``2r + r²`` parameters of the family ``tail`` are free (the first block has more than one
    neuron: :func:`jaxsym.fixedpoints.space.free_mask`); a :class:`PrecisePoint`'s ``v`` holds them in order."""
    return free_mask(np.array([2.0, *tail]))


def precise_loss(tail: tuple[int, ...], k: Any, v: Sequence[Any], free: np.ndarray) -> Any:
    """F of the family ``tail`` at (real) k and free parameters ``v``, in the current mpmath precision."""
    mpmath = _mp()
    z = np.array([mpmath.mpf(0)] * len(free), dtype=object)
    z[np.flatnonzero(free)] = list(v)
    p = np.array([mpmath.mpf(k) - sum(tail), *(mpmath.mpf(t) for t in tail)], dtype=object)
    return loss_mp(z, p)


def solve_precise(tail: tuple[int, ...], k: Any, v0: Sequence[Any], *, digits: int = 80) -> list[Any]:
    """The family's critical point at k near the free parameters ``v0`` (module docstring); a ValueError when
    Newton does not converge."""
    mpmath = _mp()
    free = free_parameters(tail)
    with mpmath.workdps(digits):
        kk = mpmath.mpf(k)

        def grad(*v: Any) -> list[Any]:
            return [mpmath.diff(lambda *u: precise_loss(tail, kk, u, free), v,
                                tuple(int(i == j) for i in range(len(v)))) for j in range(len(v))]

        start = [mpmath.mpf(x) for x in v0]
        return list(mpmath.findroot(grad, start, tol=mpmath.mpf(10) ** -(2 * (digits - 20))))


class PrecisePoint(NamedTuple):
    """A family's point in many digits: k, the free parameters and F (mpmath numbers)."""

    k: float
    v: list[Any]
    loss: Any


def follow_precise(tail: tuple[int, ...], k0: float, x0: np.ndarray, *, k_to: float = 1e12, factor: float = 1.25,
                   digits: int = 80) -> list[PrecisePoint]:
    """The family ``tail`` from its float64 point ``x0`` (all ``2r + r²`` parameters) at ``k0`` to ``k_to`` in
    steps of ×``factor``, every point solved in ``digits`` digits (module docstring)."""
    mpmath = _mp()
    free = free_parameters(tail)
    pts: list[PrecisePoint] = []
    v = solve_precise(tail, k0, np.asarray(x0, np.float64)[free], digits=digits)
    with mpmath.workdps(digits):
        pts.append(PrecisePoint(k0, v, precise_loss(tail, k0, v, free)))
    k = k0
    while k * factor <= k_to * (1 + 1e-12):
        nk = k * factor
        if len(pts) >= 2:
            (k1, v1, _), (k2, v2, _) = pts[-2], pts[-1]
            w = math.log(nk / k2) / math.log(k2 / k1)
            with mpmath.workdps(digits):
                guess = [b + (b - a) * w for a, b in zip(v1, v2, strict=True)]
        else:
            guess = pts[-1].v
        v = solve_precise(tail, nk, guess, digits=digits)
        with mpmath.workdps(digits):
            pts.append(PrecisePoint(nk, v, precise_loss(tail, nk, v, free)))
        k = nk
    return pts


def _fit(ks: Sequence[float], ys: Sequence[Any], terms: int) -> list[Any]:
    """The coefficients ``c_0 … c_{terms−1}`` of the least-squares fit ``y ≈ Σ_j c_j k^{−j/2}`` (QR on the scaled
    powers ``(x/x_max)^j``, x = k^{−1/2}, in the current precision)."""
    mpmath = _mp()
    xs = [mpmath.mpf(k) ** mpmath.mpf(-0.5) for k in ks]
    top = max(xs)
    A = mpmath.matrix(len(xs), terms)
    y = mpmath.matrix(len(xs), 1)
    for i, (x, yi) in enumerate(zip(xs, ys, strict=True)):
        for j in range(terms):
            A[i, j] = (x / top) ** j
        y[i] = yi
    c = mpmath.qr_solve(A, y)[0]
    return [c[j] / top ** j for j in range(terms)]


class Limit(NamedTuple):
    """A limit as k → ∞: ``kind`` (``a/k``: the value is lim k·F; ``constant``: lim F), the value and its error
    (mpmath numbers), the digits the error supports, the fits it agrees over, and the series itself:
    ``coefficients`` c_0, c_1, … of ``y ≈ Σ_j c_j k^{−j/2}`` (the widest, longest fit) with ``coefficient_errors``
    (the largest change of each over the other fits; the first few are meaningful)."""

    kind: str
    value: Any
    error: Any
    digits: int
    fits: int
    coefficients: list[Any]
    coefficient_errors: list[Any]


def series_precise(ks: Sequence[float], ys: Sequence[Any], *, terms: Sequence[int] = (10, 12, 14, 16),
                   k_from: Sequence[float] = (1e4, 1e5, 1e6), digits: int = 80) -> tuple[list[Any], list[Any], int]:
    """The series ``y(k) ≈ Σ_j c_j k^{−j/2}`` of values ``ys`` at ``ks``: ``(coefficients, errors, fits)``. The
    coefficients are those of the fit with the most terms on the widest range; each one's error is its largest
    change over the fits with the other ``terms`` and lower ends ``k_from`` (fits with fewer than ``terms + 4``
    points are skipped), so it states only the digits every variant agrees on."""
    mpmath = _mp()
    with mpmath.workdps(digits):
        fits = []  # (lower end, terms, coefficients)
        for lo in k_from:
            sel = [(k, y) for k, y in zip(ks, ys, strict=True) if k >= lo]
            for n in terms:
                if len(sel) >= n + 4:
                    fits.append((lo, n, _fit([k for k, _ in sel], [y for _, y in sel], n)))
        if len(fits) < 2:
            raise ValueError(f"too few points for a fit: {len(ks)} points, terms {tuple(terms)}")
        best = max(fits, key=lambda f: (-f[0], f[1]))[2]  # the widest range, the most terms
        shared = min(len(c) for _, _, c in fits)
        errs = [max(abs(c[j] - best[j]) for _, _, c in fits) for j in range(shared)]
        return best[:shared], errs, len(fits)


def supported(value: Any, error: Any, digits: int) -> tuple[Any, int]:
    """``(error, digits)`` of a fitted ``value``: the error at least ``10^{−digits/2}`` (the precision the solves
    leave), and the significant digits it supports."""
    mpmath = _mp()
    with mpmath.workdps(digits):
        floor = mpmath.mpf(10) ** -(digits // 2)
        err = max(error, floor)
        return err, int(-mpmath.log10(err / max(abs(value), floor)))


def limit_precise(pts: Sequence[PrecisePoint], kind: str, *, terms: Sequence[int] = (10, 12, 14, 16),
                  k_from: Sequence[float] = (1e4, 1e5, 1e6), digits: int = 80) -> Limit:
    """The limit of ``k·F`` (``kind = "a/k"``) or ``F`` (``"constant"``) along ``pts`` (module docstring): ``c_0``
    of :func:`series_precise`, with its error (at least ``10^{−digits/2}``) and the digits that supports."""
    mpmath = _mp()
    if kind not in ("a/k", "constant"):
        raise ValueError(f"kind must be 'a/k' or 'constant', got {kind!r}")
    with mpmath.workdps(digits):
        ys = [p.k * p.loss if kind == "a/k" else p.loss for p in pts]
        coefficients, errs, fits = series_precise([p.k for p in pts], ys, terms=terms, k_from=k_from, digits=digits)
        err, shown = supported(coefficients[0], errs[0], digits)
        return Limit(kind, coefficients[0], err, shown, fits, coefficients, errs)


def identify(value: Any, error: Any, *, basis: Sequence[str] = BASIS, max_coeff: int = 1000) -> tuple[str, Any] | None:
    """An integer relation between ``value`` and the ``basis`` constants (PSLQ at the digits ``error`` leaves),
    as ``(expression, |candidate − value|)``, kept only when the candidate evaluated anew lies within ``error`` of
    the value; else None (module docstring)."""
    mpmath = _mp()
    digits = max(10, int(-mpmath.log10(error)) - 2)
    with mpmath.workdps(max(digits, 16)):  # PSLQ needs 53 bits; fewer digits known go into its tolerance
        tol = None if digits >= 16 else mpmath.mpf(10) ** -digits
        rel = mpmath.pslq([mpmath.mpf(value), *_constants(basis)], tol=tol, maxcoeff=max_coeff, maxsteps=100_000)
    if rel is None or rel[0] == 0:
        return None
    with mpmath.workdps(60):
        cand = -sum(m * b for m, b in zip(rel[1:], _constants(basis), strict=True)) / rel[0]
        off = abs(cand - value)
        if off > error:
            return None
        parts = []
        for m, b in zip(rel[1:], basis, strict=True):
            if m:
                q = Fraction(-m, rel[0])
                parts.append(f"{q}" if b == "1" else f"{q}·{b}")
        return " + ".join(parts).replace("+ -", "− "), off


def _constants(basis: Sequence[str]) -> list[Any]:
    """The :data:`BASIS` constants named in ``basis``, in the current mpmath precision."""
    mpmath = _mp()
    known = {"1": mpmath.mpf(1), "1/pi": 1 / mpmath.pi, "1/pi^2": 1 / mpmath.pi ** 2, "pi": +mpmath.pi,
             "sqrt(2)": mpmath.sqrt(2), "sqrt(3)": mpmath.sqrt(3)}
    return [known[b] for b in basis]
