"""Students wider than the teacher: fixed-point spaces of ``k = d + n`` neurons for the target ``V = I_d``.

The symmetry group of the problem is ``S_k × S_d`` (neurons × input coordinates, the teacher's rows permuted
with the coordinates). Its isotropy types ``Δ(S_{p_1}×…×S_{p_r}) × S_n`` (``Σ p_s = d``) pair r blocks of
neurons with r blocks of coordinates, as for ``k = d`` (:mod:`jaxsym.fixedpoints.families`), and permute ``n`` *extra*
neurons among themselves. A point of the fixed-point space has the paired rows of :class:`~jaxsym.fixedpoints.families.
FixedSpace` (parameters ``x = (a, b, c)``) and ``n`` equal extra rows, constant on each coordinate block:

    w_e[a] = e_t   (a ∈ B_t),   so ‖w_e‖² = Σ_t p_t e_t²,   w_e·v_a = e_t,
    w_e·w_i = e_s S_s + Σ_{t≠s} p_t c_st e_t   (i ∈ B_s, S_s = a_s + (p_s−1) b_s),

``r`` more parameters. The loss adds to the paired part (:func:`jaxsym.fixedpoints.families._loss`)

    ½[n ‖w_e‖²/2 + n(n−1) K(w_e, w_e) + 2 n Σ_s p_s K(w_e, w_s)] − n Σ_t p_t K(w_e, v_t),

(extra neurons are parallel to each other: ``K(w_e, w_e')`` at Gram determinant 0). Critical points of this
``2r + r² + r``-parameter function are critical points of F by symmetric criticality; :func:`critical_points`
finds them by Newton from random starts and from the *split points* of the ``n = 0`` critical points, and
classifies each by the index of its dense Hessian in the full ``(k d)``-dimensional space.

**Split points.** The ReLU is positively homogeneous, so a neuron split into ``n + 1`` parallel copies of
``1/(n+1)`` of it computes the same function: a critical point of the ``k = d`` problem whose block s has one
neuron gives a critical point of the ``k = d + n`` problem with the same loss (block s's row and the extra rows
all ``w_s/(n+1)``). Whether it is still a local minimum is the question of *annihilation* by extra neurons
(Arjevani & Field): :func:`split_point` builds it, and its dense Hessian answers (the split itself leaves
zero eigenvalues, so the index counts eigenvalues below ``−hess_tol``).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsym.fixedpoints import atlas as narrow_atlas
from jaxsym.fixedpoints.families import FixedSpace, _counts, _loss, _split, free_mask, full_norm, restricted_newton
from jaxsym.landscape import model
from jaxsym.symmetry.group import isotropy

kern = model.kernel_from_inner


@dataclass(frozen=True)
class WideSpace:
    """``Fix(Δ(S_{p_1}×…×S_{p_r}) × S_n)`` for ``k = d + n`` students of the target ``V = I_d`` (``d = Σ p``):
    parameters ``z = (a[r], b[r], c[r, r], e[r])``."""

    blocks: tuple[int, ...]
    extra: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", FixedSpace(self.blocks).blocks)
        if int(self.extra) != self.extra or self.extra < 0:
            raise ValueError(f"extra neurons must be a non-negative integer, got {self.extra!r}")
        object.__setattr__(self, "extra", int(self.extra))

    @property
    def r(self) -> int:
        return len(self.blocks)

    @property
    def d(self) -> int:
        return sum(self.blocks)

    @property
    def k(self) -> int:
        return self.d + self.extra

    @property
    def free(self) -> np.ndarray:
        """Meaningful parameters: those of the paired space, and ``e`` when there are extra neurons."""
        return _free(np.array(self.blocks, np.float64), self.extra)

    def _args(self, z: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        z = jnp.asarray(z)
        return z, jnp.asarray(self.blocks, z.dtype), jnp.asarray(self.extra, z.dtype)

    def embed(self, z: jax.Array) -> jax.Array:
        """The (k, d) matrix: the paired rows (blocks consecutive), then the n extra rows."""
        z = jnp.asarray(z)
        r = self.r
        W = FixedSpace(self.blocks).embed(z[:2 * r + r * r])
        lab = np.repeat(np.arange(r), self.blocks)
        return jnp.concatenate([W, jnp.tile(z[2 * r + r * r:][lab][None, :], (self.extra, 1))])

    def loss(self, z: jax.Array) -> jax.Array:
        return _wide_loss(*self._args(z))

    def full_grad_norm(self, z: jax.Array) -> jax.Array:
        return _wide_grad_norm(*self._args(z))


def _free(p: np.ndarray, n: float) -> np.ndarray:
    """The meaningful parameters at block sizes ``p`` and ``n`` extra neurons (real or integer)."""
    return np.concatenate([free_mask(p), np.full(len(p), n > 0)])


def _wide_loss(z: jax.Array, p: jax.Array, n: jax.Array) -> jax.Array:
    """F on ``Fix(Δ(S_p) × S_n)`` (module docstring): the paired part plus the extra neurons' terms."""
    r = p.shape[0]
    x = z[:2 * r + r * r]
    e = jnp.where(n > 0, z[2 * r + r * r:], 1.0)  # no extra neurons: finite dummy terms, masked below
    a, b, c = _split(x, p)
    S = a + (p - 1) * b
    M = c @ jnp.diag(p) @ c.T
    ns = jnp.sqrt(a * a + (p - 1) * b * b + jnp.diag(M))  # norms of the paired rows
    ne2 = jnp.sum(p * e * e)
    ne = jnp.sqrt(ne2)
    g_es = e * S + c @ (p * e)  # w_e·w_i for i in block s (c has a zero diagonal)
    ww = 0.5 * (n * ne2 / 2 + n * (n - 1) * kern(ne, ne, ne2, 0.0) + 2 * n * jnp.sum(p * kern(ne, ns, g_es)))
    wv = n * jnp.sum(p * kern(ne, 1.0, e, ne2 - e * e))
    return _loss(x, p) + jnp.where(n > 0, ww - wv, 0.0)


def _wide_grad_norm(z: jax.Array, p: jax.Array, n: jax.Array) -> jax.Array:
    """‖∇F(Ez)‖_F from the restricted gradient (EᵀE = diag(counts); e fills n·p_t entries)."""
    return full_norm(jax.grad(_wide_loss)(z, p, n), jnp.concatenate([_counts(p), n * p]))


def newton(space: WideSpace, z0: np.ndarray, *, tol: float = 1e-12, iters: int = 60) -> tuple[np.ndarray, float]:
    """Levenberg–Marquardt solve of ``∇_z F = 0`` (:func:`jaxsym.fixedpoints.families.restricted_newton`); returns
    ``(z, full-space ‖∇F‖)``."""
    return _solve(np.array(space.blocks, np.float64), float(space.extra), z0, tol, iters)


def _solve(p: np.ndarray, n: float, z0: np.ndarray, tol: float = 1e-12, iters: int = 60
           ) -> tuple[np.ndarray, float]:
    """:func:`newton` at block sizes ``p`` and ``n`` given as numbers (real ones too: the restricted loss is
    defined for both, :func:`follow`)."""
    free = _free(p, n)
    with jax.enable_x64(True):
        z = jnp.asarray(np.where(free, np.asarray(z0, np.float64), 0.0))
        z, gn = restricted_newton(_wide_loss, _wide_grad_norm, z, (jnp.asarray(p, jnp.float64), jnp.float64(n)),
                                  jnp.asarray(free), tol, iters)
        return np.asarray(z), float(gn)


def split_point(blocks: tuple[int, ...], x: np.ndarray, block: int, extra: int) -> np.ndarray:
    """The ``k = d + extra`` point of the ``k = d`` point ``x`` of ``Fix(Δ(S_p))`` whose one-neuron block
    ``block`` is split into ``extra + 1`` parallel copies of ``1/(extra + 1)`` of it (module docstring)."""
    if blocks[block] != 1:
        raise ValueError(f"only a block of one neuron can be split within the space; block {block} has "
                         f"{blocks[block]}")
    r = len(blocks)
    x = np.asarray(x, np.float64)
    row = x[2 * r:].reshape(r, r)[block].copy()  # the split neuron's row, constant on each coordinate block
    row[block] = x[block]
    z = np.concatenate([x, row / (extra + 1)])
    z[block] /= extra + 1
    C = z[2 * r:2 * r + r * r].reshape(r, r)  # a view: scales c_{block, t} in z
    C[block] /= extra + 1
    return z


@dataclass(frozen=True)
class WidePoint:
    """A critical point of a wide student: the space searched, its parameters and (k, d) matrix, F, the
    full-space ‖∇F‖, the dense Hessian's index (eigenvalues below ``−hess_tol``), λ_min, the number of
    eigenvalues within ``hess_tol`` of 0, its exact isotropy, and where it came from (``"split"``/``"random"``)."""

    blocks: tuple[int, ...]
    extra: int
    z: np.ndarray
    W: np.ndarray
    loss: float
    grad_norm: float
    index: int
    hess_min: float
    zero_eigs: int
    isotropy: str
    origin: str


def classify(space: WideSpace, z: np.ndarray, origin: str, *, hess_tol: float = 1e-7) -> WidePoint:
    """F, ‖∇F‖ and the dense Hessian's spectrum of ``Ez`` in the full space (float64, closed forms)."""
    with jax.enable_x64(True):
        W = np.asarray(space.embed(jnp.asarray(z, jnp.float64)))
        V = np.eye(space.d)
        loss = float(model.loss(jnp.asarray(W), jnp.asarray(V)))
        gn = float(jnp.linalg.norm(model.grad(jnp.asarray(W), jnp.asarray(V))))
        eigs = np.linalg.eigvalsh(np.asarray(model.hessian(jnp.asarray(W), jnp.asarray(V))))
    iso = isotropy(W, V)
    return WidePoint(space.blocks, space.extra, np.asarray(z), W, loss, gn, int(np.sum(eigs < -hess_tol)),
                     float(eigs[0]), int(np.sum(np.abs(eigs) <= hess_tol)), iso.name, origin)


def critical_points(blocks: tuple[int, ...], extra: int, *, starts: int = 32, seed: int = 0,
                    splits: list[np.ndarray] | None = None, tol: float = 1e-12, accept: float = 1e-10
                    ) -> list[WidePoint]:
    """Distinct critical points of ``Fix(Δ(S_p) × S_extra)`` with full-space ‖∇F‖ ≤ ``accept``: Newton from
    the ``splits`` (parameter vectors, e.g. :func:`split_point` s) and from ``starts`` random points of the box
    ``a ∈ [−1.5, 1.5]``, ``b, c, e ∈ [−1, 1]`` drawn from ``(seed, blocks, extra)``; no extra neuron of norm
    below 1e-8 (a dead neuron is not a point where F is differentiable). Ordered by loss."""
    space = WideSpace(tuple(blocks), extra)
    r = space.r
    rng = np.random.default_rng([seed, *space.blocks, space.extra])
    lo = np.concatenate([np.full(r, -1.5), np.full(r + r * r + r, -1.0)])
    hi = -lo
    tried = [(z, "split") for z in (splits or [])] + [(rng.uniform(lo, hi), "random") for _ in range(starts)]
    found: list[WidePoint] = []
    for z0, origin in tried:
        z, gn = newton(space, z0, tol=tol)
        if not gn <= accept or (extra and np.linalg.norm(z[2 * r + r * r:]) < 1e-8):
            continue
        pt = classify(space, z, origin)
        if not pt.grad_norm <= accept or np.min(np.linalg.norm(pt.W, axis=1)) < 1e-8:
            continue
        if any(narrow_atlas.same_point(q.loss, q.isotropy, pt.loss, pt.isotropy) for q in found):
            continue
        found.append(pt)
    return sorted(found, key=lambda q: q.loss)


def splits(blocks: tuple[int, ...], W: np.ndarray, extra: int) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """The split points (:func:`split_point`) of a ``k = d`` point ``W`` of ``Fix(Δ(S_p))`` with ``extra`` more
    neurons, one per block: a block of one neuron is split as it is; from a larger block one neuron is first
    set apart (``W`` lies in the finer space ``(…, p_s − 1, 1, …)`` too). Returns ``(wide blocks, z)`` pairs."""
    out = []
    for s, ps in enumerate(blocks):
        fine = blocks if ps == 1 else (*blocks[:s], ps - 1, *blocks[s + 1:], 1)
        one = s if ps == 1 else len(blocks)
        x = FixedSpace(fine).project(_relabel(W, blocks, s) if ps > 1 else W)
        out.append((fine, split_point(fine, x, one, extra)))
    return out


def _relabel(W: np.ndarray, blocks: tuple[int, ...], s: int) -> np.ndarray:
    """``W`` with the last neuron and coordinate of block s moved to the end (the order of the finer space)."""
    start = sum(blocks[:s])
    last = start + blocks[s] - 1
    order = [i for i in range(len(W)) if i != last] + [last]
    return np.asarray(W)[np.ix_(order, order)]


def atlas(d: int, extra: int, *, max_blocks: int = 3, starts: int = 32, seed: int = 0,
          narrow: pd.DataFrame | None = None) -> pd.DataFrame:
    """Critical points of ``k = d + extra`` students of ``V = I_d`` in every ``Fix(Δ(S_p) × S_extra)`` with at
    most ``max_blocks`` paired blocks, from random starts and from the split points of the ``k = d`` atlas's
    minima (``narrow``: a :func:`jaxsym.fixedpoints.atlas.atlas` table at ``k = d``; computed when not given).

    Columns: ``d, k, extra, space, isotropy, loss, grad_norm, index, hess_min, zero_eigs, kind`` (``global``,
    ``minimum`` for index 0, else ``saddle``), ``origin`` (``random`` or ``split``), ``split_of`` (for split
    points: the loss of the ``k = d`` minimum split), ``W``. Random finds are deduplicated by loss and isotropy;
    every split point is listed (it answers whether that minimum survives ``extra`` more neurons)."""
    if narrow is None:
        narrow = narrow_atlas.atlas(d, max_blocks=max_blocks, starts=starts, seed=seed)
    rows: list[dict[str, object]] = []

    def row(pt: WidePoint, split_of: float) -> dict[str, object]:
        return {"d": d, "k": d + extra, "extra": extra, "space": list(pt.blocks), "isotropy": pt.isotropy,
                "loss": pt.loss, "grad_norm": pt.grad_norm, "index": pt.index, "hess_min": pt.hess_min,
                "zero_eigs": pt.zero_eigs, "kind": narrow_atlas.kind_of(pt.loss, pt.index), "origin": pt.origin,
                "split_of": split_of, "W": pt.W.ravel().tolist()}

    for _, m in narrow[narrow["kind"] == "minimum"].iterrows():
        W = np.asarray(m["W"], np.float64).reshape(d, d)
        for fine, z in splits(tuple(m["space"]), W, extra):
            rows.append(row(classify(WideSpace(fine, extra), z, "split"), float(m["loss"])))
    seen: list[WidePoint] = []
    for blocks in narrow_atlas.types_up_to(d, max_blocks):
        for pt in critical_points(blocks, extra, starts=starts, seed=seed):
            if any(narrow_atlas.same_point(q.loss, q.isotropy, pt.loss, pt.isotropy) for q in seen):
                continue
            seen.append(pt)
            rows.append(row(pt, float("nan")))
    df = pd.DataFrame(rows)
    return df.sort_values(["origin", "loss"], kind="stable").reset_index(drop=True) if len(df) else df


def follow(blocks: tuple[int, ...], extra: int, z: np.ndarray, *, d_to: int | None = None, n_to: int | None = None,
           step: float = 0.25, tol: float = 1e-12) -> pd.DataFrame:
    """Continue a critical point of ``Fix(Δ(S_p) × S_extra)`` in the teacher's size d (the first block grows or
    shrinks, ``d_to``) or in the number of extra neurons n (``n_to``), in real steps of ``step`` (both enter the
    restricted loss as numbers), each corrected by Newton; at every integer value the point is classified in the
    full space (:func:`classify`: dense Hessian). Stops where Newton fails (a fold or the end of the space).

    Returns one row per integer value: ``d, n, k, space, loss, grad_norm, index, hess_min, zero_eigs, isotropy``.
    """
    if (d_to is None) == (n_to is None):
        raise ValueError("give exactly one of d_to (continue in d) or n_to (continue in n)")
    tail = tuple(blocks[1:])
    d0 = sum(blocks)
    start, end = (float(d0), float(d_to)) if d_to is not None else (float(extra), float(n_to))
    sign = 1.0 if end >= start else -1.0
    rows: list[dict[str, object]] = []
    t = start
    while True:
        d, n = (t, float(extra)) if d_to is not None else (float(d0), t)
        p = np.array([d - sum(tail), *tail], np.float64)
        if p[0] < 1:
            break
        z, gn = _solve(p, n, z, tol)
        if not gn <= tol:
            break
        if abs(t - round(t)) < 1e-9:
            space = WideSpace((round(p[0]), *tail), round(n))
            pt = classify(space, z, "follow")
            rows.append({"d": space.d, "n": space.extra, "k": space.k, "space": list(space.blocks), "loss": pt.loss,
                         "grad_norm": pt.grad_norm, "index": pt.index, "hess_min": pt.hess_min,
                         "zero_eigs": pt.zero_eigs, "isotropy": pt.isotropy})
        if sign * (end - t) <= 1e-12:
            break
        t = t + sign * min(step, abs(end - t))
    return pd.DataFrame(rows)
