"""Families of critical points in k: a critical point of a fixed-point space followed as its first block grows,
through real k, with births and deaths located by bisection and limits fitted in powers of k^{-1/2}.

Setting of :mod:`jaxsym.fixedpoints.space`: ``k = d``, ``V = I``, ``H = Δ(S_{p_1}×…×S_{p_r})``. A *family*
keeps the blocks ``tail = (p_2, …, p_r)`` and lets ``p_1 = k − Σ tail`` grow; the restricted loss only counts
neurons, so the family is a curve in real k (:func:`jaxsym.fixedpoints.continuation.trace`), classified at every
point by the block spectrum (:func:`jaxsym.fixedpoints.spectrum.classify`), whose multiplicities are polynomials
in the block sizes. Where λ_min changes sign along it, the family is *born* as a local minimum (saddle →
minimum as k grows) or *dies*; where the curve folds, it ends.

**Limits.** Above ``k_max`` the family is followed geometrically to ``asymptotic_to`` (10⁵) and the loss there
evaluated in 50 digits (:func:`jaxsym.fixedpoints.space.loss_precise`); its limit as k → ∞ is fitted by
:func:`loss_limit` in powers of k^{-1/2}, and so are the Hessian eigenvalues that stay bounded
(:func:`bounded_limits`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsym.fixedpoints.continuation import Trace, trace
from jaxsym.fixedpoints.solve import Solution, solve
from jaxsym.fixedpoints.space import Space, loss_precise
from jaxsym.fixedpoints.spectrum import classify, components
from jaxsym.io import columns as col
from jaxsym.landscape import model
from jaxsym.symmetry.group import find_element, isotropy


def blocks_at(tail: tuple[int, ...], k: float) -> tuple[float, ...]:
    """Block sizes of the family with fixed blocks ``tail`` at real k: ``(k − Σ tail, *tail)``."""
    return (k - sum(tail), *tail)


def space_at(tail: tuple[int, ...], k: float, extra: float | None = None) -> Space:
    """The family's space at real k: blocks :func:`blocks_at`, and ``extra`` more student neurons (None: a
    ``k = d`` student). With extra neurons the family's parameter k is the teacher's size ``d = Σ p``; the
    student has ``d + extra`` neurons."""
    return Space(blocks_at(tail, k), extra=extra)


@dataclass
class CurvePoint:
    """The family at real k: parameters, loss (float64; in 50 digits from ``k_max`` on, see
    :func:`follow_family`), full ‖∇F‖, λ_min and its block, the Hessian index (negative eigenvalues counted
    with their multiplicity polynomials), the number of distinct eigenvalues, and the distinct eigenvalues with
    their multiplicities (:class:`jaxsym.fixedpoints.spectrum.Classified`)."""

    k: float
    x: np.ndarray
    loss: float
    grad_norm: float
    hess_min: float
    hess_block: str
    index: float
    n_distinct_eigs: int
    eig_values: list[float]
    eig_mults: list[float]


def curve_point(tail: tuple[int, ...], k: float, x: np.ndarray, gn: float, extra: float | None = None
                ) -> CurvePoint:
    """The family ``tail``'s point ``x`` at real k (with its full ‖∇F‖ ``gn``), classified."""
    c = classify(space_at(tail, k, extra), x)
    return CurvePoint(k, x, c.loss, gn, c.hess_min, c.hess_block, c.index, c.n_distinct_eigs, c.eig_values,
                      c.eig_mults)


def solve_at(tail: tuple[int, ...], k: float, x0: np.ndarray, extra: float | None = None) -> Solution:
    """The family's critical point at real k near ``x0`` (:func:`jaxsym.fixedpoints.solve.solve`)."""
    return solve(space_at(tail, k, extra), x0)


def trace_family(tail: tuple[int, ...], k0: float, x0: np.ndarray, k_end: float, *, extra: float | None = None,
                 **options: float) -> Trace[CurvePoint]:
    """The family ``tail`` (with ``extra`` more neurons) traced in real k from ``(k0, x0)`` to ``k_end``, every
    point classified (:func:`jaxsym.fixedpoints.continuation.trace` with its ``options``)."""
    return trace(lambda k, z: solve_at(tail, k, z, extra), k0, x0, k_end,  # type: ignore[arg-type]
                 lambda k, sol: curve_point(tail, k, sol.z, sol.grad_norm, extra), **options)


def edge(tail: tuple[int, ...]) -> float:
    """The smallest k of the family's domain in real k: its varying block keeps at least two neurons."""
    return 2.0 + sum(tail)


def bisect_sign(tail: tuple[int, ...], a: CurvePoint, b: CurvePoint, *, xtol: float = 1e-8,
                extra: float | None = None) -> tuple[float, float]:
    """The k between two points of a family where λ_min changes sign, by bisection (each midpoint solved from
    the interpolated parameters, else from the nearer end): ``(k, half-width of the final bracket)``, the
    half-width below ``xtol`` unless Newton failed inside the bracket first."""
    if np.sign(a.hess_min) == np.sign(b.hess_min):
        raise ValueError("λ_min has the same sign at both ends")
    lo, hi = (a, b) if a.k < b.k else (b, a)
    while hi.k - lo.k > xtol:
        km = (lo.k + hi.k) / 2
        w = (km - lo.k) / (hi.k - lo.k)
        sol = solve_at(tail, km, (1 - w) * lo.x + w * hi.x, extra)
        if not sol.converged:
            sol = solve_at(tail, km, lo.x, extra)
        if not sol.converged:
            break
        mid = curve_point(tail, km, sol.z, sol.grad_norm, extra)
        if np.sign(mid.hess_min) == np.sign(lo.hess_min):
            lo = mid
        else:
            hi = mid
    return (lo.k + hi.k) / 2, (hi.k - lo.k) / 2


# --------------------------------------------------------------------------------------------------
# Asymptotics in k
# --------------------------------------------------------------------------------------------------
def series_fit(k: np.ndarray, y: np.ndarray, terms: int = 4, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` coefficients of the least-squares fit ``y ≈ Σ_{j<terms} c_j k^{−j/2}``, and their errors:
    the largest change of each when one more term is fitted or only the upper half of the k range is used."""
    k = np.asarray(k, np.float64)
    y = np.asarray(y, np.float64)

    def fit(kk: np.ndarray, yy: np.ndarray, m: int) -> np.ndarray:
        X = kk[:, None] ** (-0.5 * np.arange(m))[None, :]
        return np.linalg.lstsq(X, yy, rcond=None)[0][:n]

    base = fit(k, y, terms)
    upper = k >= np.median(k)
    alt = [fit(k, y, terms + 1)]
    if upper.sum() > terms + 1:
        alt.append(fit(k[upper], y[upper], terms))
    return base, np.max([np.abs(v - base) for v in alt], axis=0)


def series_limit(k: np.ndarray, y: np.ndarray, terms: int = 4) -> tuple[float, float]:
    """The limit of ``y(k)`` as k → ∞: ``(c_0, error)`` of :func:`series_fit`."""
    c, err = series_fit(k, y, terms)
    return float(c[0]), float(err[0])


def _last_decade(k: np.ndarray) -> np.ndarray:
    return k >= k.max() / 10


def decade_slope(k: np.ndarray, y: np.ndarray) -> float:
    """The log–log slope of |y| against k over the last decade of k (k ≥ max k / 10): about s where y ~ k^s."""
    last = _last_decade(k)
    return float(np.polyfit(np.log(k[last]), np.log(np.abs(y[last])), 1)[0])


def loss_limit(k: np.ndarray, loss: np.ndarray, terms: int = 4) -> tuple[str, float, float]:
    """``(kind, value, error)``: ``("a/k", a, ·)`` when the loss vanishes like a/k (the fitted limit of F is
    zero within its error and k·F converges to a within 10%), ``("constant", F_∞, ·)`` when F tends to a limit
    known to 10% of the loss's size, ``("grows", s, ·)`` when F grows without bound like k^s (its log–log slope
    over the last decade of k above 0.1; the error: the slopes' difference over that decade's two halves), else
    ``("unclear", F_∞, ·)`` (the series does not describe the curve)."""
    k = np.asarray(k, np.float64)
    loss = np.asarray(loss, np.float64)
    last = _last_decade(k)
    if last.sum() >= 4 and np.all(loss[last] > 0):
        lk, lf = np.log(k[last]), np.log(loss[last])
        slope = decade_slope(k, loss)
        if slope > 0.1:
            half = lk >= np.median(lk)
            slopes = [float(np.polyfit(lk[m], lf[m], 1)[0]) for m in (half, ~half) if m.sum() >= 2]
            return "grows", slope, max((abs(v - slope) for v in slopes), default=math.nan)
    f_inf, f_err = series_limit(k, loss, terms)
    scale = float(np.max(np.abs(loss)))
    if f_err > 0.1 * scale:
        return "unclear", f_inf, f_err
    if abs(f_inf) <= max(3 * f_err, 1e-3 * scale):
        a, a_err = series_limit(k, k * loss, terms)
        return ("a/k" if a_err <= 0.1 * abs(a) else "unclear"), a, a_err
    return "constant", f_inf, f_err


def bounded_series(tail: tuple[int, ...], ks: np.ndarray, xs: Sequence[np.ndarray], *, growth_tol: float = 0.05,
                   extra: float | None = None, terms: int = 4, n: int = 1
                   ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The series (:func:`series_fit`: ``n`` coefficients and their errors) of the Hessian eigenvalues that
    stay bounded along the family's points ``xs`` at ``ks`` (each block's eigenvalues in order, kept when their
    log–log slope over the last decade of k is below ``growth_tol``), as ``(block label, coefficients,
    errors)``, in order of the limit c₀."""
    ks = np.asarray(ks, np.float64)
    per: dict[tuple[str, int], list[float]] = {}
    for k, x in zip(ks, xs, strict=True):
        for comp in components(blocks_at(tail, float(k)), x, extra):
            if comp.mult <= 0:  # not part of the spectrum here (e.g. the extra neurons' std_n at n = 1)
                continue
            for j, v in enumerate(comp.values):
                per.setdefault((comp.label, j), []).append(float(v))
    out = []
    last = _last_decade(ks)
    for (label, _), vals in sorted(per.items()):
        y = np.asarray(vals)
        if len(y) != len(ks) or np.any(y[last] == 0):
            continue
        if abs(decade_slope(ks, y)) < growth_tol or np.all(np.abs(y[last]) < 1e-6):
            c, err = series_fit(ks, y, terms, n)
            out.append((label, c, err))
    return sorted(out, key=lambda t: float(t[1][0]))


def bounded_limits(tail: tuple[int, ...], pts: list[CurvePoint], *, growth_tol: float = 0.05,
                   extra: float | None = None) -> list[tuple[str, float, float]]:
    """Limits of the Hessian eigenvalues that stay bounded along ``pts``: ``(block label, c₀, error)`` of
    :func:`bounded_series`."""
    return [(label, float(c[0]), float(e[0])) for label, c, e in
            bounded_series(tail, np.array([c.k for c in pts]), [c.x for c in pts], growth_tol=growth_tol,
                           extra=extra)]


SIGN_FLOOR = 1e-8  # |λ_min| below this at a bracket's end: no sign change is counted there


# --------------------------------------------------------------------------------------------------
# A whole family: its curve, births and deaths, limits
# --------------------------------------------------------------------------------------------------
@dataclass
class Family:
    """A family of critical points in real k (fixed blocks ``tail``, growing first block).

    Attributes:
      tail: the fixed blocks.   k0, x0: where it was started.   curve: its points, ascending in k.
      ends: ``(low, high)`` k where the family ends in a fold (to 1e-8), None where it reaches the domain's
        edge (the first block keeps two neurons) or the last k traced.
      sign_changes: k where λ_min changes sign: ``(k, "birth", error)`` from saddle to minimum as k grows,
        ``(k, "death", error)`` the other way; the error is 1e-8 or less unless Newton failed inside the
        bracket. Changes where |λ_min| is below :data:`SIGN_FLOOR` at either end of the bracket are not counted
        (at large k a λ_min that tends to zero is below the blocks' float64 accuracy).
      limit: ``(kind, value, error)`` of the loss as k → ∞ (:func:`loss_limit`; ``("zero", 0, 0)`` for the
        global minimum), from :func:`jaxsym.fixedpoints.space.loss_precise` on the upper part of the curve;
        ``("none", nan, nan)`` for a family that ends in a fold on the way up (it has no limit) or has too few
        points above ``k_max``.
      bounded_eigs: ``[(block, value, error)]``, limits of the Hessian eigenvalues that stay bounded.
      stopped: ``(low, high)``, the k where tracing gave up on that side
        (:func:`jaxsym.fixedpoints.continuation.trace`), else None; the family then has no limit unless its
        upper part reached ``k_max``.
      extra: the student's neurons beyond the teacher's (None: ``k = d``); with them, "k" above is the
        teacher's size d (:func:`space_at`).
    """

    tail: tuple[int, ...]
    k0: float
    x0: np.ndarray
    curve: list[CurvePoint]
    ends: tuple[float | None, float | None]
    sign_changes: list[tuple[float, str, float]]
    limit: tuple[str, float, float]
    bounded_eigs: list[tuple[str, float, float]]
    stopped: tuple[float | None, float | None] = (None, None)
    extra: float | None = None

    @property
    def birth_k(self) -> float | None:
        births = [k for k, what, _ in self.sign_changes if what == "birth"]
        return births[-1] if births else None

    @property
    def death_k(self) -> float | None:
        """Where the family stops being a local minimum as k grows past its birth (a sign change or a fold)."""
        b = self.birth_k
        deaths = [k for k, what, _ in self.sign_changes if what == "death" and (b is None or k > b)]
        if deaths:
            return deaths[0]
        return self.ends[1]


def follow_family(tail: tuple[int, ...], k0: float, x0: np.ndarray, *, k_max: float = 100.0,
                  asymptotic_to: float = 1e5, step: float = 0.5, xtol: float = 1e-8,
                  extra: float | None = None) -> Family:
    """Trace the family through ``(k0, x0)`` down to the edge of its domain (or a fold) and up to ``k_max`` in
    steps of ``step``, then geometrically (×1.1 per step) to ``asymptotic_to``; locate λ_min's sign changes by
    bisection to ``xtol``; fit the limits of the loss and of the bounded eigenvalues on ``k ≥ k_max``
    (``asymptotic_to > k_max``).

    Sign changes are looked for between consecutive points of the curve up to ``k_max`` (beyond it the points
    are far apart and λ_min of saddle families can hover near zero: a ``--families all`` run at k = 6, with a
    block spectrum that then had spurious eigenvalues above k ≈ 3·10⁴, reported "births" of saddle families
    between k = 15,000 and 100,000); two of them closer than ``step``
    cancel out and are not seen (near the domain's edge, where a block's multiplicity polynomial is below
    one, λ_min of the continued spectrum can change sign twice within 0.1 in k)."""
    low, end_low, stop_low = trace_family(tail, k0, x0, edge(tail), step=step, min_step=xtol, extra=extra)
    high, end_high, stop_high = trace_family(tail, k0, x0, k_max, step=step, min_step=xtol, extra=extra)
    far: list[CurvePoint] = []
    if end_high is None and stop_high is None and asymptotic_to > k_max:
        far, end_high, stop_high = trace_family(tail, high[-1].k, high[-1].x, asymptotic_to, step=0.1 * k_max,
                                                growth=1.1, min_step=xtol, extra=extra)
        far = far[1:]
    curve = sorted(low[1:] + high + far, key=lambda c: c.k)
    changes = []
    for a, b in itertools.pairwise(curve):
        # at the domain's edge (two neurons left in the first block) some blocks' multiplicities vanish and
        # λ_min jumps: compare with a point just inside instead, so that only changes of sign inside count
        if a.k <= edge(tail) + 1e-9:
            sol = solve_at(tail, edge(tail) + 1e-6, a.x, extra)
            if not sol.converged:
                continue
            a = curve_point(tail, edge(tail) + 1e-6, sol.z, sol.grad_norm, extra)
        if np.sign(a.hess_min) != np.sign(b.hess_min) and b.k - a.k > 0 and b.k <= k_max \
                and min(abs(a.hess_min), abs(b.hess_min)) > SIGN_FLOOR:
            where, err = bisect_sign(tail, a, b, xtol=xtol, extra=extra)
            changes.append((where, "birth" if b.hess_min > 0 else "death", err))
    limit: tuple[str, float, float] = ("none", math.nan, math.nan)
    eigs: list[tuple[str, float, float]] = []
    tail_pts = [c for c in curve if c.k >= k_max]
    if len(tail_pts) >= 8 and end_high is None:  # a family that ends in a fold has no limit as k → ∞
        ks = np.array([c.k for c in tail_pts])
        f = np.array([loss_precise(space_at(tail, c.k, extra), c.x) for c in tail_pts])
        for c, v in zip(tail_pts, f, strict=True):  # the curve keeps the digits float64 loses at large k
            c.loss = float(v)
        # the global minimum: zero to the precision of its float64 location (the precise loss of W = I is 0)
        limit = ("zero", 0.0, 0.0) if np.max(np.abs(f)) <= 1e-15 else loss_limit(ks, f)
        eigs = bounded_limits(tail, tail_pts, extra=extra)
    return Family(tail, k0, np.asarray(x0), curve, (end_low, end_high), changes, limit, eigs, (stop_low, stop_high),
                  extra)


# --------------------------------------------------------------------------------------------------
# From a sweep's point to its family at integer k
# --------------------------------------------------------------------------------------------------
def to_block_form(W: np.ndarray, tol: float = 1e-6) -> tuple[Space, np.ndarray]:
    """Permute a k×k point with product-type isotropy into block form; returns its space and parameters."""
    iso = isotropy(W, tol=tol)
    blocks = tuple(sorted(iso.neuron_orbits, reverse=True))
    space = Space(blocks)
    # rows ordered by neuron orbit (largest first); then, inside each block, each neuron's own coordinate
    order = np.concatenate(sorted(iso.row_orbits, key=lambda o: (-len(o), o[0])))
    Wr = np.asarray(W, np.float64)[order]
    # columns: inside each row block the distinguished (diagonal) column of a neuron is the one whose value
    # differs from the rest of its block row; match it greedily, then fill by column orbits
    col_orbits = sorted(iso.col_orbits, key=lambda o: (-len(o), o[0]))
    cols: list[int] = []
    start = 0
    for p in blocks:
        cands = [o for o in col_orbits if len(o) == p and not set(o) & set(cols)]
        best = None
        for cand in cands:  # the column orbit whose submatrix has the diagonal+constant pattern
            sub = Wr[start:start + p][:, cand]
            perm = []
            for i in range(p):
                row = sub[i]
                j = int(np.argmax(np.abs(row - np.median(row)))) if p >= 3 else i
                perm.append(cand[j])
            if len(set(perm)) == p:
                best = perm
                break
        if best is None:
            raise ValueError(f"point with isotropy {iso.name} is not of the block form Δ(Π S_p)")
        cols += best
        start += p
    Wb = Wr[:, cols]
    x = space.project(Wb)
    with jax.enable_x64(True):
        rebuilt = np.asarray(space.embed(jnp.asarray(x)))
    if np.max(np.abs(rebuilt - Wb)) > 100 * tol:
        g = find_element(rebuilt, np.asarray(W), tol=100 * tol)
        if g is None:
            raise ValueError(f"could not put the point into block form {blocks} (max deviation "
                             f"{np.max(np.abs(rebuilt - Wb)):.2e})")
    return space, x


def integer_curve(space: Space, x: np.ndarray, k_to: int) -> list[CurvePoint]:
    """The family of the point ``x`` of ``space`` at every integer k from ``space.k`` to ``k_to`` (either
    direction; down to a first block of one neuron), each corrected by Newton (:func:`trace` in steps of one,
    ending at the first k where Newton fails)."""
    tail = space.blocks[1:]
    end = max(float(k_to), 1.0 + sum(tail))
    pts = trace_family(tail, float(space.k), x, end, step=1.0, min_step=1.0).points
    return sorted(pts, key=lambda c: c.k)


def follow(W0: np.ndarray, k_max: int, spectra_at: list[int], *, progress: bool = False
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Follow the family of the critical point ``W0`` (k = d, V = I, isotropy Δ(Π S_p)) down to where it
    is born and up to ``k_max`` at integer k (:func:`integer_curve`); its spectra at the ``spectra_at`` values of
    k, at every k up to the start (where it may turn from saddle into minimum) and at the last k, each with the
    full closed-form gradient there. Returns ``(table, spectra)``."""
    space, x = to_block_form(W0)
    tail = space.blocks[1:]
    pts = {round(c.k): c for c in integer_curve(space, x, 1) + integer_curve(space, x, k_max)}
    table = pd.DataFrame([{col.K: k, col.BLOCKS: [k - sum(tail), *tail], col.LOSS: c.loss, col.GRAD_NORM: c.grad_norm,
                           col.X: c.x.tolist()} for k, c in sorted(pts.items())])
    spec_rows = []
    for k in sorted((set(spectra_at) | set(range(min(pts), space.k + 1)) | {max(pts)}) & set(pts)):
        c = pts[k]
        with jax.enable_x64(True):
            W = Space(blocks_at(tail, k)).embed(jnp.asarray(c.x))
            full = float(jnp.linalg.norm(model.grad(W, jnp.eye(k), accurate=k <= 200)))
        spec_rows.append({col.K: k, col.HESS_MIN: c.hess_min, col.HESS_MAX: c.eig_values[-1],
                          col.N_DISTINCT_EIGS: c.n_distinct_eigs, col.EIG_VALUES: c.eig_values,
                          col.EIG_MULTS: [int(m) for m in c.eig_mults], col.FULL_GRAD_NORM: full,
                          col.BOUNDED_EIGS: int(sum(m for v, m in zip(c.eig_values, c.eig_mults, strict=True)
                                                  if v < 1.0)),
                          col.LARGEST: c.eig_values[-3:]})
        if progress:
            print(f"  k = {k}: λ_min = {c.hess_min:.3e}, {c.n_distinct_eigs} distinct eigenvalues, "
                  f"‖∇F‖ (full) = {full:.1e}", flush=True)
    return table, pd.DataFrame(spec_rows)


def fit_power(k: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares fit ``y ≈ c·k^a`` on log–log axes; returns ``(c, a)``."""
    a, logc = np.polyfit(np.log(k), np.log(y), 1)
    return float(np.exp(logc)), float(a)
