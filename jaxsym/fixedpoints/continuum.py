"""Families of critical points in continuous k: real block sizes, the block spectrum from nested fixed-point
spaces, births and deaths located by bisection, and asymptotic fits in powers of k^{-1/2}.

Setting of :mod:`jaxsym.fixedpoints.families`: ``k = d``, ``V = I``, ``H = Δ(S_{p_1}×…×S_{p_r})``; a *family* keeps the
blocks ``p_2, …, p_r`` and lets ``p_1 = k − Σ_{s≥2} p_s`` grow. The restricted loss
(:func:`jaxsym.fixedpoints.families._loss`) is a function of ``(x, p)`` in which the block sizes only count neurons
(``p_s``, ``p_s(p_s−1)``, ``p_s p_t``), so it is defined for real ``p``; so is everything below, which makes
each family a curve in real k.

**Block spectrum from nested fixed-point spaces.** At a point of Fix(H) the Hessian commutes with H. For a
subgroup ``K ⊂ H`` of the same form (some block split into a bulk and singletons), ``Fix(K) ⊃ Fix(H)`` is a
restricted problem of the same kind, with real block sizes, and its Hessian (in the metric ``diag(counts)``
that makes the parameters orthonormal coordinates of ``R^{k×k}``) is the full Hessian on Fix(K). Fix(K)
carries, of each irreducible ρ of H, ``dim ρ^K`` vectors per copy, so each isotypic block is the Hessian on
a subspace of some Fix(K) orthogonal to the coarser spaces it contains:

- trivial: Fix(H) itself (multiplicity 1);
- standard of block s (``p_s − 1``): Fix(K₁) with K₁ splitting one neuron off block s, orthogonal to Fix(H);
- ``[p−2, 2]`` of block s (``p(p−3)/2``) and ``[p−2, 1, 1]`` (``(p−1)(p−2)/2``): Fix(K₂) with two neurons
  split off block s, orthogonal to both ways of embedding Fix(K₁) in it, even resp. odd under swapping the
  two split neurons;
- standard(s) ⊗ standard(t) (``(p_s−1)(p_t−1)``): one neuron split off each of s and t, orthogonal to the two
  spaces that split only one of them.

These are the irreducibles of :func:`jaxsym.fixedpoints.families.block_spectrum` (which needs integer k: it builds k×k
test matrices); at integer k both give the same eigenvalues (tested), and here the multiplicities are the
dimension polynomials evaluated at real p.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from jaxsym.fixedpoints.families import _counts, _jit_loss, _loss, free_mask, newton_at
from jaxsym.symmetry.spectra import group_eigenvalues

# A fixed-point space of the refinement lattice: blocks given as tuples of "atoms" (the parts of the coarse
# blocks that a refinement splits off), each atom with a real size.


@dataclass(frozen=True)
class Space:
    """A fixed-point space ``Fix(Δ(Π S_{q_j}))`` whose block j is the union of the atoms ``blocks[j]``.

    ``sizes[a]`` is the (real) number of neurons of atom a."""

    blocks: tuple[tuple[int, ...], ...]
    sizes: tuple[float, ...]

    @property
    def r(self) -> int:
        return len(self.blocks)

    @property
    def p(self) -> np.ndarray:
        return np.array([sum(self.sizes[a] for a in blk) for blk in self.blocks], dtype=np.float64)

    @property
    def free(self) -> np.ndarray:
        return free_mask(self.p)


def embedding(coarse: Space, fine: Space) -> np.ndarray:
    """The linear map ``x_coarse ↦ x_fine`` of a point of Fix(coarse) written in the parameters of Fix(fine)
    (every fine block inside one coarse block), restricted to the free parameters of both: (n_fine, n_coarse).

    ``a_f = a_P(f)``, ``b_f = b_P(f)``, and ``c_fg = b_P(f)`` when f, g lie in one coarse block, else
    ``c_P(f)P(g)``, with P(f) the coarse block containing f."""
    parent = []
    for blk in fine.blocks:
        owners = [j for j, cb in enumerate(coarse.blocks) if set(blk) <= set(cb)]
        if len(owners) != 1:
            raise ValueError(f"{fine.blocks} does not refine {coarse.blocks}")
        parent.append(owners[0])
    rc, rf = coarse.r, fine.r
    E = np.zeros((2 * rf + rf * rf, 2 * rc + rc * rc))
    for f in range(rf):
        E[f, parent[f]] = 1.0
        E[rf + f, rc + parent[f]] = 1.0
        for g in range(rf):
            if f == g:
                continue
            if parent[f] == parent[g]:
                E[2 * rf + f * rf + g, rc + parent[f]] = 1.0
            else:
                E[2 * rf + f * rf + g, 2 * rc + parent[f] * rc + parent[g]] = 1.0
    return E[np.ix_(fine.free, coarse.free)]


def _full(space: Space, x_free: np.ndarray) -> np.ndarray:
    x = np.zeros(2 * space.r + space.r ** 2)
    x[space.free] = x_free
    return x


@jax.jit
def _hessian(x: jax.Array, p: jax.Array) -> jax.Array:
    return jax.hessian(_loss)(x, p)


def space_hessian(space: Space, x_free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A, G)`` on the free parameters of ``space`` at the point ``x_free``: the Hessian of the restricted
    loss and the metric ``diag(counts)`` (``Aᵧ = λ G y`` are the full Hessian's eigenpairs on Fix(space))."""
    with jax.enable_x64(True):
        p = jnp.asarray(space.p)
        A = np.asarray(_hessian(jnp.asarray(_full(space, x_free)), p))
        G = np.asarray(_counts(p))
    free = space.free
    return A[np.ix_(free, free)], np.diag(G[free])


def _complement(G: np.ndarray, spans: list[np.ndarray], tol: float = 1e-9) -> np.ndarray:
    """A basis of the G-orthogonal complement of the span of ``spans``' columns."""
    n = G.shape[0]
    if not spans:
        return np.eye(n)
    S = np.concatenate(spans, axis=1)
    return scipy.linalg.null_space((G @ S).T, rcond=tol)


def _restricted_eigs(A: np.ndarray, G: np.ndarray, Q: np.ndarray) -> np.ndarray:
    if Q.shape[1] == 0:
        return np.zeros(0)
    Aq = Q.T @ A @ Q
    return scipy.linalg.eigh((Aq + Aq.T) / 2, Q.T @ G @ Q, eigvals_only=True)


def _parity(P: np.ndarray, Q: np.ndarray, sign: int, tol: float = 1e-9) -> np.ndarray:
    """A basis of the part of range(Q) even (sign = 1) or odd (−1) under the permutation P."""
    M = (Q + sign * (P @ Q)) / 2
    if M.size == 0:
        return M
    u, s, _ = np.linalg.svd(M, full_matrices=False)
    return u[:, s > tol * max(1.0, s.max(initial=0.0))]


def _swap(space: Space, i: int, j: int) -> np.ndarray:
    """The permutation of ``space``'s free parameters that swaps its blocks i and j."""
    r = space.r
    perm = list(range(r))
    perm[i], perm[j] = j, i
    idx = [perm[f] for f in range(r)] + [r + perm[f] for f in range(r)] \
        + [2 * r + perm[f] * r + perm[g] for f in range(r) for g in range(r)]
    P = np.zeros((len(idx), len(idx)))
    P[np.arange(len(idx)), idx] = 1.0
    free = space.free
    return P[np.ix_(free, free)]


@dataclass
class Component:
    """One isotypic block: its irreducible, multiplicity (a polynomial in the block sizes) and eigenvalues."""

    label: str
    mult: float
    values: np.ndarray


def _coarse(p: Sequence[float]) -> Space:
    return Space(tuple((j,) for j in range(len(p))), tuple(float(v) for v in p))


def components(p: Sequence[float], x: np.ndarray) -> list[Component]:
    """The Hessian's isotypic blocks at the point with parameters ``x`` (all ``2r + r²`` of them, as in
    :class:`jaxsym.fixedpoints.families.FixedSpace`) of Fix(Δ(Π S_{p_s})) for real block sizes ``p`` (module
    docstring)."""
    p = [float(v) for v in p]
    r = len(p)
    H = _coarse(p)
    xH = np.asarray(x, np.float64)[H.free]
    out = []
    A, G = space_hessian(H, xH)
    out.append(Component("trivial", 1.0, _restricted_eigs(A, G, np.eye(len(xH)))))

    def split(spec: dict[int, int]) -> tuple[Space, dict[int, list[int]]]:
        """Split ``spec[s]`` singletons off block s; returns the space and the new singleton atoms of each s."""
        sizes = list(p)
        blocks: list[tuple[int, ...]] = []
        singles: dict[int, list[int]] = {}
        for s in range(r):
            m = spec.get(s, 0)
            if m:
                sizes[s] = p[s] - m
                new = list(range(len(sizes), len(sizes) + m))
                sizes += [1.0] * m
                singles[s] = new
                blocks += [(s,)] + [(a,) for a in new]
            else:
                blocks.append((s,))
        return Space(tuple(blocks), tuple(sizes)), singles

    def merged(space: Space, singles: dict[int, list[int]], keep: set[int]) -> Space:
        """``space`` with every split-off singleton not in ``keep`` merged back into its bulk block."""
        owner = {a: s for s, atoms in singles.items() for a in atoms}
        blocks = []
        for (a,) in space.blocks:
            if a < r:
                blocks.append((a, *[b for b, o in owner.items() if o == a and b not in keep]))
            elif a in keep:
                blocks.append((a,))
        return Space(tuple(blocks), space.sizes)

    def on(space: Space, singles: dict[int, list[int]], keeps: list[set[int]]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hessian and metric on ``space`` at the point, and a basis orthogonal to the coarser spaces that keep
        only the singletons in each of ``keeps``."""
        xf = embedding(merged(space, singles, set()), space) @ xH
        A, G = space_hessian(space, xf)
        Q = _complement(G, [embedding(merged(space, singles, keep), space) for keep in keeps])
        return A, G, Q

    for s in range(r):
        if p[s] > 1:
            K1, singles1 = split({s: 1})
            A, G, Q = on(K1, singles1, [set()])
            out.append(Component(f"std[{s}]", p[s] - 1, _restricted_eigs(A, G, Q)))
        if p[s] > 2:
            K2, singles = split({s: 2})
            a1, a2 = singles[s]
            A, G, Q = on(K2, singles, [{a1}, {a2}])
            i1 = next(i for i, blk in enumerate(K2.blocks) if blk == (a1,))
            i2 = next(i for i, blk in enumerate(K2.blocks) if blk == (a2,))
            P = _swap(K2, i1, i2)
            out.append(Component(f"[p-2,1,1][{s}]", (p[s] - 1) * (p[s] - 2) / 2,
                                 _restricted_eigs(A, G, _parity(P, Q, -1))))
            if p[s] > 3:
                out.append(Component(f"[p-2,2][{s}]", p[s] * (p[s] - 3) / 2,
                                     _restricted_eigs(A, G, _parity(P, Q, 1))))
    for s in range(r):
        for t in range(s + 1, r):
            if p[s] > 1 and p[t] > 1:
                K, singles = split({s: 1, t: 1})
                A, G, Q = on(K, singles, [set(singles[s]), set(singles[t])])
                out.append(Component(f"std[{s}]⊗std[{t}]", (p[s] - 1) * (p[t] - 1), _restricted_eigs(A, G, Q)))
    return out


def hess_min(p: Sequence[float], x: np.ndarray) -> tuple[float, str]:
    """λ_min over every isotypic block at (p, x), and the block it belongs to."""
    return _lowest(components(p, x))


def _lowest(comps: list[Component]) -> tuple[float, str]:
    best = (math.inf, "")
    for c in comps:
        if len(c.values) and c.mult > 0 and c.values[0] < best[0]:
            best = (float(c.values[0]), c.label)
    return best


# --------------------------------------------------------------------------------------------------
# A family as a curve in real k
# --------------------------------------------------------------------------------------------------
def blocks_at(tail: tuple[int, ...], k: float) -> np.ndarray:
    """Block sizes of the family with fixed blocks ``tail`` at real k: ``(k − Σ tail, *tail)``."""
    return np.array([k - sum(tail), *tail], dtype=np.float64)


def grad_tol_at(k: float, tol: float = 1e-12) -> float:
    """The full-space ‖∇F‖ a float64 solve can reach at k: ``tol``, or 64·ε·k^{3/2} once that is larger.

    The restricted gradient sums ≈ k² terms of order one for the parameters of the growing block, so its
    rounding error is ≈ ε·k²; mapped to the full space (divided by the parameters' counts ≈ k and k², summed
    over ≈ k entries) that is ≈ ε·k^{3/2}: 1e-12 up to k ≈ 2000, 7e-7 at k = 10⁵."""
    return max(tol, 64 * float(np.finfo(np.float64).eps) * k ** 1.5)


def solve(tail: tuple[int, ...], k: float, x0: np.ndarray, *, tol: float = 1e-12, iters: int = 60
          ) -> tuple[np.ndarray, float, bool]:
    """Newton (Levenberg–Marquardt) for the family's critical point at real k from ``x0``:
    ``(x, full-space ‖∇F‖, converged)``; converged means ‖∇F‖ ≤ :func:`grad_tol_at` (``k``, ``tol``)."""
    tol = grad_tol_at(k, tol)
    x, gn = newton_at(blocks_at(tail, k), x0, tol=tol, iters=iters)
    return x, gn, gn <= tol


@dataclass
class CurvePoint:
    """The family at real k: parameters, loss (float64; in 50 digits from ``k_max`` on, see
    :func:`follow_family`), full ‖∇F‖, λ_min and its block, the Hessian index (negative eigenvalues counted
    with their multiplicity polynomials) and the number of distinct eigenvalues (to 1e-7)."""

    k: float
    x: np.ndarray
    loss: float
    grad_norm: float
    hess_min: float
    hess_block: str
    index: float
    n_distinct_eigs: int


def curve_point(tail: tuple[int, ...], k: float, x: np.ndarray, gn: float) -> CurvePoint:
    """The family ``tail``'s point ``x`` at real k (with its full ‖∇F‖ ``gn``), classified by the isotypic
    blocks of :func:`components`: loss, λ_min and its block, index and distinct eigenvalues."""
    p = blocks_at(tail, k)
    with jax.enable_x64(True):
        f = float(_jit_loss(jnp.asarray(x), jnp.asarray(p)))
    comps = [c for c in components(p, x) if c.mult > 0]
    lam, block = _lowest(comps)
    vals = np.concatenate([c.values for c in comps])
    mults = np.concatenate([np.full(len(c.values), c.mult) for c in comps])
    return CurvePoint(k, x, f, gn, lam, block, float(mults[vals < -1e-6].sum()),
                      len(group_eigenvalues(vals, 1e-7)))


def _edge(tail: tuple[int, ...]) -> float:
    """The smallest k of the family's domain: its varying block keeps at least two neurons."""
    return 2.0 + sum(tail)


class Trace(NamedTuple):
    """A traced piece of a family: its points; ``end``, the k where it ends in a fold (to ``min_step``), else
    None; ``stopped``, the k where tracing gave up after ``max_failures`` failed Newton corrections without
    reaching a fold or ``k_end`` (else None)."""

    points: list[CurvePoint]
    end: float | None
    stopped: float | None


def trace(tail: tuple[int, ...], k0: float, x0: np.ndarray, k_end: float, *, step: float = 0.5,
          growth: float = 1.0, min_step: float = 1e-8, tol: float = 1e-12, max_failures: int = 400) -> Trace:
    """Follow the family from ``(k0, x0)`` to ``k_end`` (either direction) in real k.

    Steps of ``step`` in k (times ``growth`` after each success, for long ranges), predicted by linear
    extrapolation of x and corrected by Newton; a failed correction halves the step, and each success doubles
    it again up to the nominal one. The family ends before ``k_end`` where Newton fails for steps below
    ``min_step`` (a fold, where a branch meets another and both disappear). Where corrections keep failing and
    succeeding at small steps (a family crawling along a region Newton cannot hold, seen on saddle families:
    13,609 points for one), tracing stops after ``max_failures`` failures and says where (:class:`Trace`)."""
    sign = 1.0 if k_end >= k0 else -1.0
    x, gn, ok = solve(tail, k0, x0, tol=tol)
    if not ok:
        raise ValueError(f"no critical point of the family at k = {k0} near the start")
    pts = [curve_point(tail, k0, x, gn)]
    prev: tuple[float, np.ndarray] | None = None
    k, h, nominal, failures = k0, step, step, 0
    while sign * (k_end - k) > 0:
        h_try = min(h, abs(k_end - k))
        nk = k + sign * h_try
        guess = x if prev is None else x + (x - prev[1]) * (nk - k) / (k - prev[0])
        nx, ngn, ok = solve(tail, nk, guess, tol=tol)
        if not ok and prev is not None:  # the linear predictor can overshoot near a fold: plain start
            nx, ngn, ok = solve(tail, nk, x, tol=tol)
        if ok:
            prev, x, k = (k, x), nx, nk
            pts.append(curve_point(tail, k, x, ngn))
            nominal *= growth
            h = min(nominal, 2 * h_try)  # after a halving, the step grows back
            continue
        if h_try <= min_step:
            return Trace(pts, k + sign * h_try / 2, None)
        failures += 1
        if failures >= max_failures:
            return Trace(pts, None, k)
        h = h_try / 2
    return Trace(pts, None, None)


def bisect_sign(tail: tuple[int, ...], a: CurvePoint, b: CurvePoint, *, xtol: float = 1e-8,
                tol: float = 1e-12) -> tuple[float, float]:
    """The k between two points of a family where λ_min changes sign, by bisection (each midpoint solved by
    Newton from the interpolated parameters, else from the nearer end): ``(k, half-width of the final
    bracket)``, the half-width below ``xtol`` unless Newton failed inside the bracket first."""
    if np.sign(a.hess_min) == np.sign(b.hess_min):
        raise ValueError("λ_min has the same sign at both ends")
    lo, hi = (a, b) if a.k < b.k else (b, a)
    while hi.k - lo.k > xtol:
        km = (lo.k + hi.k) / 2
        w = (km - lo.k) / (hi.k - lo.k)
        x, gn, ok = solve(tail, km, (1 - w) * lo.x + w * hi.x, tol=tol)
        if not ok:
            x, gn, ok = solve(tail, km, lo.x, tol=tol)
        if not ok:
            break
        mid = curve_point(tail, km, x, gn)
        if np.sign(mid.hess_min) == np.sign(lo.hess_min):
            lo = mid
        else:
            hi = mid
    return (lo.k + hi.k) / 2, (hi.k - lo.k) / 2


# --------------------------------------------------------------------------------------------------
# Asymptotics in k
# --------------------------------------------------------------------------------------------------
def loss_precise(p: Sequence[float], x: np.ndarray, digits: int = 50) -> float:
    """The restricted loss :func:`jaxsym.fixedpoints.families._loss` in ``digits``-digit arithmetic (mpmath).

    In float64 its three sums (student–student, student–teacher, teacher–teacher, each ≈ k²/2π) cancel to a
    loss of order 1/k, losing every digit above k ≈ 10⁴ (the cancellation error ≈ 1e-16·k² reaches the loss
    itself); the same formula with 50 digits keeps about 30 of them at k = 10⁵. The point ``x`` is the float64
    critical point: F is stationary there, so the position's error changes F only to second order."""
    import mpmath

    with mpmath.workdps(digits):
        mp = mpmath.mpf
        r = len(p)
        P = [mp(float(v)) for v in p]
        xs = [mp(float(v)) for v in np.asarray(x, np.float64)]
        a = xs[:r]
        b = [xs[r + s] if P[s] > 1 else mp(0) for s in range(r)]
        c = [[mp(0) if s == t else xs[2 * r + s * r + t] for t in range(r)] for s in range(r)]
        pi = mpmath.pi

        def kern(n1: object, n2: object, g: object, q: object = None) -> object:
            q = n1 * n1 * n2 * n2 - g * g if q is None else q
            root = mpmath.sqrt(max(q, mp(0)))
            return (root + (pi - mpmath.atan2(root, g)) * g) / (2 * pi)

        M = [[sum(c[s][u] * P[u] * c[t][u] for u in range(r)) for t in range(r)] for s in range(r)]
        S = [a[s] + (P[s] - 1) * b[s] for s in range(r)]
        n2 = [a[s] ** 2 + (P[s] - 1) * b[s] ** 2 + M[s][s] for s in range(r)]
        n = [mpmath.sqrt(v) for v in n2]
        ww = sum(P[s] * n2[s] / 2 for s in range(r))
        wv = mp(0)
        for s in range(r):
            if P[s] > 1:
                g_same = 2 * a[s] * b[s] + (P[s] - 2) * b[s] ** 2 + M[s][s]
                ww += P[s] * (P[s] - 1) * kern(n[s], n[s], g_same)
                wv += P[s] * (P[s] - 1) * kern(n[s], 1, b[s])
            wv += P[s] * kern(n[s], 1, a[s], (P[s] - 1) * b[s] ** 2 + M[s][s])
            for t in range(r):
                if t != s:
                    g_cross = M[s][t] + c[t][s] * S[s] + c[s][t] * S[t]
                    ww += P[s] * P[t] * kern(n[s], n[t], g_cross)
                    wv += P[s] * P[t] * kern(n[s], 1, c[s][t])
        k = sum(P)
        vv = (k / 2 + k * (k - 1) / (2 * pi)) / 2
        return float(ww / 2 - wv + vv)


def series_limit(k: np.ndarray, y: np.ndarray, terms: int = 4) -> tuple[float, float]:
    """The limit of ``y(k)`` as k → ∞ from a least-squares fit ``y ≈ Σ_{j<terms} c_j k^{−j/2}``; returns
    ``(c_0, error)``, the error being the largest change of ``c_0`` when one more term is fitted or only the
    upper half of the k range is used."""
    k = np.asarray(k, np.float64)
    y = np.asarray(y, np.float64)

    def c0(kk: np.ndarray, yy: np.ndarray, n: int) -> float:
        X = kk[:, None] ** (-0.5 * np.arange(n))[None, :]
        return float(np.linalg.lstsq(X, yy, rcond=None)[0][0])

    base = c0(k, y, terms)
    upper = k >= np.median(k)
    alt = [c0(k, y, terms + 1)]
    if upper.sum() > terms + 1:
        alt.append(c0(k[upper], y[upper], terms))
    return base, max(abs(v - base) for v in alt)


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
        global minimum), from :func:`loss_precise` on the upper part of the curve; ``("none", nan, nan)`` for a
        family that ends in a fold on the way up (it has no limit) or has too few points above ``k_max``.
      bounded_eigs: ``[(block, value, error)]``, limits of the Hessian eigenvalues that stay bounded.
      stopped: ``(low, high)``, the k where tracing gave up on that side (:func:`trace`), else None; the family
        then has no limit unless its upper part reached ``k_max``.
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
                  asymptotic_to: float = 1e5, step: float = 0.5, xtol: float = 1e-8) -> Family:
    """Trace the family through ``(k0, x0)`` down to the edge of its domain (or a fold) and up to ``k_max`` in
    steps of ``step``, then geometrically (×1.1 per step) to ``asymptotic_to``; locate λ_min's sign changes by
    bisection to ``xtol``; fit the limits of the loss and of the bounded eigenvalues on ``k ≥ k_max``
    (``asymptotic_to > k_max``).

    Sign changes are looked for between consecutive points of the curve up to ``k_max`` (beyond it the blocks'
    float64 eigenvalues lose accuracy: a ``--families all`` run at k = 6 reported "births" of saddle families
    between k = 15,000 and 100,000 where λ_min hovers near zero); two of them closer than ``step``
    cancel out and are not seen (near the domain's edge, where a block's multiplicity polynomial is below
    one, λ_min of the continued spectrum can change sign twice within 0.1 in k)."""
    low, end_low, stop_low = trace(tail, k0, x0, _edge(tail), step=step, min_step=xtol)
    high, end_high, stop_high = trace(tail, k0, x0, k_max, step=step, min_step=xtol)
    far: list[CurvePoint] = []
    if end_high is None and stop_high is None and asymptotic_to > k_max:
        far, end_high, stop_high = trace(tail, high[-1].k, high[-1].x, asymptotic_to, step=0.1 * k_max,
                                         growth=1.1, min_step=xtol)
        far = far[1:]
    curve = sorted(low[1:] + high + far, key=lambda c: c.k)
    changes = []
    edge = _edge(tail)
    for a, b in itertools.pairwise(curve):
        # at the domain's edge (two neurons left in the first block) some blocks' multiplicities vanish and
        # λ_min jumps: compare with a point just inside instead, so that only changes of sign inside count
        if a.k <= edge + 1e-9:
            x, gn, ok = solve(tail, edge + 1e-6, a.x)
            if not ok:
                continue
            a = curve_point(tail, edge + 1e-6, x, gn)
        if np.sign(a.hess_min) != np.sign(b.hess_min) and b.k - a.k > 0 and b.k <= k_max \
                and min(abs(a.hess_min), abs(b.hess_min)) > SIGN_FLOOR:
            where, err = bisect_sign(tail, a, b, xtol=xtol)
            changes.append((where, "birth" if b.hess_min > 0 else "death", err))
    limit: tuple[str, float, float] = ("none", math.nan, math.nan)
    eigs: list[tuple[str, float, float]] = []
    tail_pts = [c for c in curve if c.k >= k_max]
    if len(tail_pts) >= 8 and end_high is None:  # a family that ends in a fold has no limit as k → ∞
        ks = np.array([c.k for c in tail_pts])
        f = np.array([loss_precise(blocks_at(tail, c.k), c.x) for c in tail_pts])
        for c, v in zip(tail_pts, f, strict=True):  # the curve keeps the digits float64 loses at large k
            c.loss = float(v)
        # the global minimum: zero to the precision of its float64 location (the precise loss of W = I is 0)
        limit = ("zero", 0.0, 0.0) if np.max(np.abs(f)) <= 1e-15 else loss_limit(ks, f)
        eigs = bounded_limits(tail, tail_pts)
    return Family(tail, k0, np.asarray(x0), curve, (end_low, end_high), changes, limit, eigs, (stop_low, stop_high))


def bounded_limits(tail: tuple[int, ...], pts: list[CurvePoint], *, growth_tol: float = 0.05
                   ) -> list[tuple[str, float, float]]:
    """Limits of the Hessian eigenvalues that stay bounded along ``pts`` (each block's eigenvalues in order,
    kept when their log–log slope over the last decade of k is below ``growth_tol``), by
    :func:`series_limit`."""
    ks = np.array([c.k for c in pts])
    per: dict[tuple[str, int], list[float]] = {}
    for c in pts:
        for comp in components(blocks_at(tail, c.k), c.x):
            for j, v in enumerate(comp.values):
                per.setdefault((comp.label, j), []).append(float(v))
    out = []
    last = _last_decade(ks)
    for (label, _), vals in sorted(per.items()):
        y = np.asarray(vals)
        if len(y) != len(ks) or np.any(y[last] == 0):
            continue
        if abs(decade_slope(ks, y)) < growth_tol or np.all(np.abs(y[last]) < 1e-6):
            value, err = series_limit(ks, y)
            out.append((label, value, err))
    return sorted(out, key=lambda t: t[1])
