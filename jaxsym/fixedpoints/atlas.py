"""An atlas of critical points by symmetry: the critical points of each fixed-point space, found without descent.

For the identity target (``k = d``, ``V = I``) and an isotropy type ``H = Δ(S_{p_1}×…×S_{p_r})`` with
``Σ p_i = k``, the fixed-point space ``Fix(H)`` has ``2r + r(r−1)`` parameters (:class:`~jaxsym.fixedpoints.families.
FixedSpace`). By the principle of symmetric criticality, ∇F at a point of Fix(H) lies in Fix(H), so the critical
points of the restricted loss are critical points of F. :func:`critical_points` looks for all of them in a box
of the parameters: Levenberg–Marquardt (Newton) from ``starts`` random points in Fix(H)
(:func:`jaxsym.fixedpoints.families.newton`), finished by the sweeps' float64 polish in the full space and accepted when
the full-space ‖∇F‖ ≤ ``accept`` (1e-10, the certificate's τ_g); distinct points are kept once (same loss to
1e-10 relative and same exact isotropy: points related by the normaliser of H, e.g. swapping two blocks of
equal size, are one orbit). Each point is then classified in the full k²-dimensional space by its Hessian
spectrum from the isotypic blocks (:func:`jaxsym.fixedpoints.families.block_spectrum`): its *index* (the number of
negative
eigenvalues, with multiplicity; 0 = a local minimum), λ_min and the number of distinct eigenvalues; and by its
exact isotropy group (:func:`jaxsym.symmetry.group.isotropy`), which may be larger than H (the global minimum lies in
every fixed-point space).

:func:`atlas` does this for every type with at most ``max_blocks`` blocks at one k. :func:`scan` does it for
every k of a range with restricted computations only (:func:`scan_k`: Newton vmapped over all starts of all
types, acceptance by the exact full-space gradient norm, classification by the isotypic blocks of
:mod:`jaxsym.fixedpoints.continuum`), which reaches k in the hundreds, and :func:`scan_families` follows the family of
each
local minimum found, once. A random search finds
the critical points whose basins of attraction (for Newton) meet the box; it is not a proof that there are no
others.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsym.certify.exact import Polished, make_polish
from jaxsym.config import CertifyConfig
from jaxsym.fixedpoints.continuum import Family, blocks_at, curve_point, follow_family, grad_tol_at
from jaxsym.fixedpoints.families import (
    FixedSpace,
    _counts,
    _full_grad_norm,
    _loss,
    block_spectrum,
    free_mask,
    newton,
    restricted_newton,
)
from jaxsym.io.results import atomic_write_parquet, read_metadata, read_parquet_checked
from jaxsym.symmetry.group import isotropy
from jaxsym.symmetry.naming import isotropy_type

BOX = {"a": (-1.5, 1.5), "b": (-1.0, 1.0), "c": (-1.0, 1.0)}  # sampling box of the parameters a, b, c


@dataclass(frozen=True)
class AtlasPoint:
    """A critical point of F found in a fixed-point space.

    Attributes:
      space: the block sizes of the fixed-point space searched.   x: its parameters.
      W: (k, k) the point.   loss, grad_norm: F and the full-space ‖∇F‖ (float64).
      index: number of negative Hessian eigenvalues (with multiplicity).   hess_min: λ_min.
      n_distinct_eigs: distinct Hessian eigenvalues.   isotropy, isotropy_order: its exact isotropy group.
      neuron_orbits: orbit sizes of that group on neurons.
    """

    space: tuple[int, ...]
    x: np.ndarray
    W: np.ndarray
    loss: float
    grad_norm: float
    index: int
    hess_min: float
    n_distinct_eigs: int
    isotropy: str
    isotropy_order: int
    neuron_orbits: list[int]


def types_up_to(k: int, max_blocks: int = 3) -> list[tuple[int, ...]]:
    """The isotropy types ``Δ(S_{p_1}×…×S_{p_r})`` of ``k`` neurons with ``r ≤ max_blocks``: the partitions of
    ``k`` into at most ``max_blocks`` parts, largest block first (e.g. k = 4: (4,), (3, 1), (2, 2), (2, 1, 1))."""
    out: list[tuple[int, ...]] = []

    def parts(n: int, largest: int, left: int, prefix: tuple[int, ...]) -> None:
        if n == 0:
            out.append(prefix)
            return
        if left == 0:
            return
        for p in range(min(n, largest), 0, -1):
            parts(n - p, p, left - 1, (*prefix, p))

    parts(k, k, max_blocks, ())
    return out


def random_starts(blocks: tuple[int, ...], starts: int, seed: int) -> np.ndarray:
    """(starts, 2r + r²) Newton starts in :data:`BOX` for the space ``blocks``, from ``(seed, blocks)`` alone."""
    r = len(blocks)
    lo = np.concatenate([np.full(r, BOX["a"][0]), np.full(r, BOX["b"][0]), np.full(r * r, BOX["c"][0])])
    hi = np.concatenate([np.full(r, BOX["a"][1]), np.full(r, BOX["b"][1]), np.full(r * r, BOX["c"][1])])
    return np.random.default_rng([seed, *blocks]).uniform(lo, hi, size=(starts, lo.size))


def same_loss(loss_a: float, loss_b: float) -> bool:
    """Losses equal to 1e-10 (relative above 1): the loss half of :func:`same_point`."""
    return abs(loss_a - loss_b) <= 1e-10 * max(1.0, abs(loss_b))


def same_point(loss_a: float, iso_a: str, loss_b: float, iso_b: str) -> bool:
    """Two critical points are one orbit when their losses agree to 1e-10 (relative) and their exact isotropy
    groups have the same name (points related by the normaliser of H, e.g. two swapped blocks of equal size)."""
    return same_loss(loss_a, loss_b) and iso_a == iso_b


def kind_of(loss: float, index: int) -> str:
    """``global`` (loss ≤ 1e-8), ``minimum`` (index 0: a spurious local minimum) or ``saddle``."""
    return "global" if loss <= 1e-8 else "minimum" if index == 0 else "saddle"


@functools.cache
def _full_polish(k: int) -> Callable[..., Polished]:
    """The float64 Levenberg–Marquardt polish of the sweeps (:func:`jaxsym.certify.exact.make_polish`) for k = d,
    V = I, jitted once per k."""
    with jax.enable_x64(True):
        return jax.jit(make_polish(CertifyConfig(), np.eye(k)))


def critical_points(blocks: tuple[int, ...], *, starts: int = 32, seed: int = 0, tol: float = 1e-12,
                    accept: float = 1e-10, hess_tol: float = 1e-6) -> list[AtlasPoint]:
    """The distinct critical points found in ``Fix(Δ(S_{p_1}×…×S_{p_r}))`` from ``starts`` random starts
    (module docstring), each with full-space ‖∇F‖ ≤ ``accept`` (float64), ordered by loss. The starts come from
    ``(seed, blocks)`` alone."""
    space = FixedSpace(tuple(blocks))
    found: list[AtlasPoint] = []
    polish = _full_polish(space.k)
    for x0 in random_starts(space.blocks, starts, seed):
        x, _ = newton(space, x0, tol=tol)
        with jax.enable_x64(True):
            W0 = np.asarray(space.embed(jnp.asarray(x, jnp.float64)), np.float64)
            if not np.all(np.isfinite(W0)):
                continue
            # the restricted derivatives are NaN where two rows align (θ = 0, e.g. the global minimum): finish and
            # check in the full space with the NaN-free closed forms (equivariant, so the point stays in Fix(H))
            pol = polish(jnp.asarray(W0), jnp.float64(0.0), jnp.asarray(False))
            W, loss, gnorm = np.asarray(pol.W), float(pol.loss), float(pol.grad_norm)
        if not gnorm <= accept or np.min(np.linalg.norm(W, axis=1)) < 1e-8:  # not critical, or a dead neuron
            continue
        x = space.project(W)
        iso = isotropy(W, np.eye(space.k))
        if any(same_point(p.loss, p.isotropy, loss, iso.name) for p in found):
            continue
        bs = block_spectrum(space, x)
        found.append(AtlasPoint(space.blocks, np.asarray(x), W, loss, gnorm,
                                int(bs.mults[bs.values < -hess_tol].sum()), float(bs.values[0]),
                                len(bs.grouped(hess_tol)), iso.name, iso.order, list(iso.neuron_orbits)))
    return sorted(found, key=lambda p: p.loss)


def atlas(k: int, *, max_blocks: int = 3, types: list[tuple[int, ...]] | None = None, starts: int = 32,
          seed: int = 0) -> pd.DataFrame:
    """The atlas at ``k``: every distinct critical point found in the fixed-point space of each type (all types
    with at most ``max_blocks`` blocks unless ``types`` is given), one row each, deduplicated across types by
    loss and exact isotropy (a point found in several spaces is listed under the first, the largest group).

    Columns: ``k, space, type, isotropy, isotropy_order, neuron_orbits, loss, grad_norm, index, hess_min,
    n_distinct_eigs, kind`` (``global``, ``minimum`` for index 0, else ``saddle``), ``W``.
    """
    rows: list[dict[str, object]] = []
    for blocks in types if types is not None else types_up_to(k, max_blocks):
        for p in critical_points(tuple(blocks), starts=starts, seed=seed):
            if any(same_point(float(q["loss"]), str(q["isotropy"]), p.loss, p.isotropy) for q in rows):
                continue
            kind = kind_of(p.loss, p.index)
            # the k-independent type of a diagonal product group; any other group is named as it is
            typ = isotropy_type(p.neuron_orbits, k) if p.isotropy.startswith("Δ") else p.isotropy
            rows.append({"k": k, "space": list(p.space), "type": typ,
                         "isotropy": p.isotropy, "isotropy_order": p.isotropy_order,
                         "neuron_orbits": p.neuron_orbits, "loss": p.loss, "grad_norm": p.grad_norm,
                         "index": p.index, "hess_min": p.hess_min, "n_distinct_eigs": p.n_distinct_eigs,
                         "kind": kind, "W": p.W.ravel().tolist()})
    df = pd.DataFrame(rows)
    return df.sort_values(["loss", "isotropy"], kind="stable").reset_index(drop=True) if len(df) else df


# --------------------------------------------------------------------------------------------------
# Many k at once: the restricted problem only
# --------------------------------------------------------------------------------------------------
SCAN_BATCH = 256  # Newton solves per vmapped call (one compilation per number of blocks r)


class Solved(NamedTuple):
    """Solves of :func:`solve_many`, one row each: ``x`` (n, 2r + r²), ``grad_norm`` (full-space ‖∇F‖),
    ``loss``, and ``trivial_neg``: the negative eigenvalues (below −1e-6) of the Hessian on the space solved in
    (the trivial isotypic block of that space; any one is a descent direction of F, so > 0 means a saddle)."""

    x: np.ndarray
    grad_norm: np.ndarray
    loss: np.ndarray
    trivial_neg: np.ndarray


@functools.cache
def _newton_batch(iters: int) -> Callable[..., tuple[jax.Array, ...]]:
    """``(x0 (n, m), p (n, r), free (n, m), tol) -> Solved`` fields:
    :func:`jaxsym.fixedpoints.families.restricted_newton`
    vmapped over starts and block sizes; the Hessian ``A`` of the restricted loss in the metric
    ``G = diag(counts)`` (eigenvalues of ``G^{-1/2} A G^{-1/2}`` on the free parameters)."""

    def one(x0: jax.Array, p: jax.Array, free: jax.Array, tol: jax.Array) -> tuple[jax.Array, ...]:
        x, gn = restricted_newton(_loss, _full_grad_norm, x0, (p,), free, tol, iters)
        s = 1.0 / jnp.sqrt(jnp.where(free, _counts(p), 1.0))
        A = jnp.where(free[:, None] & free[None, :], jax.hessian(_loss)(x, p) * s[:, None] * s[None, :],
                      jnp.eye(x.size))
        neg = jnp.sum(jnp.linalg.eigvalsh((A + A.T) / 2) < -1e-6)
        return x, gn, _loss(x, p), neg

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None)))


def _solve_batches(p: np.ndarray, x0: np.ndarray, tol: float, iters: int) -> Solved:
    free = np.stack([free_mask(q) for q in p])
    x0 = np.where(free, x0, 0.0)
    fn = _newton_batch(iters)
    n = len(p)

    def batch(lo: int) -> tuple[np.ndarray, ...]:
        idx = np.minimum(np.arange(lo, lo + SCAN_BATCH), n - 1)  # the last batch padded with its last row
        with jax.enable_x64(True):
            out = fn(jnp.asarray(x0[idx]), jnp.asarray(p[idx]), jnp.asarray(free[idx]), jnp.float64(tol))
            return tuple(np.asarray(o)[:min(SCAN_BATCH, n - lo)] for o in out)

    outs = [batch(lo) for lo in range(0, n, SCAN_BATCH)]
    return Solved(*(np.concatenate(a) for a in zip(*outs, strict=True)))


def solve_many(blocks: list[tuple[int, ...]], x0: np.ndarray, *, tol: float, iters: int = 60, restarts: int = 2,
               near: float = 1e-3) -> Solved:
    """Newton in Fix(Δ(S_{p_1}×…)) for each ``(blocks[i], x0[i])`` (all with the same number of blocks r; x0 of
    shape (n, 2r + r²)), float64, in vmapped batches of :data:`SCAN_BATCH` (:class:`Solved`).

    Levenberg–Marquardt near a saddle can stall with its damping at the maximum; the solves that end above
    ``tol`` but below ``near`` are restarted from where they stopped (damping reset) up to ``restarts`` times."""
    p = np.asarray(blocks, np.float64).reshape(len(blocks), -1)
    out = _solve_batches(p, np.asarray(x0, np.float64), tol, iters)
    for _ in range(restarts):
        again = np.flatnonzero((out.grad_norm > tol) & (out.grad_norm < near))
        if not len(again):
            break
        redo = _solve_batches(p[again], out.x[again], tol, iters)
        for full, part in zip(out, redo, strict=True):
            full[again] = part
    return out


def neuron_norms(blocks: tuple[int, ...], x: np.ndarray) -> np.ndarray:
    """The k row norms of the embedded point, sorted: ``‖w‖² = a_s² + (p_s−1) b_s² + Σ_t p_t c_st²`` for each of
    the p_s rows of block s. Invariant under the whole group, so equal for two points of one orbit."""
    p = np.asarray(blocks, np.float64)
    r = len(p)
    a, b, c = x[:r], np.where(p > 1, x[r:2 * r], 0.0), x[2 * r:].reshape(r, r) * (1 - np.eye(r))
    n = np.sqrt(a * a + (p - 1) * b * b + (c * c) @ p)
    return np.sort(np.repeat(n, np.asarray(blocks, int)))


@dataclass
class _Found:
    """A distinct point of :func:`scan_k` and the solves that reached it."""

    space: tuple[int, ...]
    x: np.ndarray
    loss: float
    grad_norm: float
    hits: int
    found_by: str
    saddle: bool  # a negative eigenvalue on some space it was found in


def scan_k(k: int, *, previous: pd.DataFrame | None = None, max_blocks: int = 3, starts: int = 16,
           seed: int = 0, accept: float = 1e-10, classify_all_to: int = 20) -> pd.DataFrame:
    """The atlas at k from restricted computations only, for k up to hundreds (:func:`atlas` polishes and
    classifies in the k²-dimensional space, which it cannot afford there).

    Newton from ``starts`` random points of each type with at most ``max_blocks`` blocks
    (:func:`random_starts`: the same as :func:`atlas`'s), plus, when ``previous`` (the scan at k − 1) is given,
    from each of its local minima with the first block grown by one (its family of :mod:`jaxsym.fixedpoints.continuum`
    one step on), all solved together (:func:`solve_many`). Kept: full-space ‖∇F‖ ≤ ``accept`` (exact from the
    restricted gradient, :func:`jaxsym.fixedpoints.families.full_norm`) and no row of norm below 1e-8. Solves whose
    losses
    agree to 1e-10 (:func:`same_loss`) are one point, the first in job order (random starts first, largest
    group first): this also merges a continuum of critical points with parallel neurons (their norms can be
    shared out along it at the same loss), which :func:`atlas` merges by its isotropy test.

    Classified (index, λ_min and distinct eigenvalues from the isotypic blocks of
    :func:`jaxsym.fixedpoints.continuum.components`, equal to the integer-k block spectrum (tested); exact isotropy):
    every
    point when ``k ≤ classify_all_to``, else every point with no negative eigenvalue on any space it was
    found in (``trivial_neg`` = 0: only those can be local minima). The others are saddles for certain and
    keep ``index``, ``isotropy`` and ``type`` empty (``index_at_least`` holds the certain lower bound).

    Columns: those of :func:`atlas` with ``x`` (the parameters in ``space``) instead of ``W``,
    ``isotropy_order`` as a decimal string (k! outgrows 64 bits from k = 21), and
    ``index_at_least``, ``hits`` (solves that ended at the point) and ``found_by`` (``random``, or
    ``continued``: reached only from the previous k's minima).
    """
    jobs: list[tuple[tuple[int, ...], np.ndarray, str]] = [
        (blocks, x0, "random") for blocks in types_up_to(k, max_blocks) for x0 in random_starts(blocks, starts, seed)]
    if previous is not None and len(previous):
        for row in previous[previous["index"] == 0].itertuples():
            grown = (int(row.space[0]) + 1, *(int(q) for q in row.space[1:]))
            jobs.append((grown, np.asarray(row.x, np.float64), "continued"))
    solved: dict[int, tuple[np.ndarray, float, float, int]] = {}
    for r in sorted({len(b) for b, _, _ in jobs}):
        at = [i for i, (b, _, _) in enumerate(jobs) if len(b) == r]
        out = solve_many([jobs[i][0] for i in at], np.stack([jobs[i][1] for i in at]), tol=grad_tol_at(k))
        solved.update((i, (out.x[j], float(out.grad_norm[j]), float(out.loss[j]), int(out.trivial_neg[j])))
                      for j, i in enumerate(at))
    found: list[_Found] = []
    for i, (blocks, _, origin) in enumerate(jobs):
        x, gn, f, neg = solved[i]
        if not (gn <= accept and np.isfinite(f)) or neuron_norms(blocks, x)[0] < 1e-8:  # not critical; dead
            continue
        same = next((q for q in found if same_loss(q.loss, f)), None)
        if same is None:
            found.append(_Found(blocks, x, f, gn, 1, origin, neg > 0))
        else:
            same.hits += 1
            same.saddle |= neg > 0
    rows = []
    for q in found:
        row: dict[str, object] = {"k": k, "space": list(q.space), "type": None, "isotropy": None,
                                  "isotropy_order": None, "neuron_orbits": None, "loss": q.loss,
                                  "grad_norm": q.grad_norm, "index": None, "index_at_least": int(q.saddle),
                                  "hess_min": None, "n_distinct_eigs": None, "kind": "saddle" if q.saddle else None,
                                  "hits": q.hits, "found_by": q.found_by, "x": q.x.tolist()}
        if k <= classify_all_to or not q.saddle:
            cp = curve_point(q.space[1:], float(k), q.x, q.grad_norm)
            with jax.enable_x64(True):
                W = np.asarray(FixedSpace(q.space).embed(jnp.asarray(q.x)), np.float64)
            iso = isotropy(W, np.eye(k))
            index = round(cp.index)
            row.update(type=isotropy_type(list(iso.neuron_orbits), k) if iso.name.startswith("Δ") else iso.name,
                       isotropy=iso.name, isotropy_order=str(iso.order), neuron_orbits=list(iso.neuron_orbits),
                       index=index, index_at_least=index, hess_min=cp.hess_min,
                       n_distinct_eigs=cp.n_distinct_eigs, kind=kind_of(q.loss, index))
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        df = df.astype({"index": "Int64", "n_distinct_eigs": "Int64"})
    return df.sort_values("loss", kind="stable").reset_index(drop=True) if len(df) else df


def scan(k_from: int, k_to: int, directory: Path, *, max_blocks: int = 3, starts: int = 16, seed: int = 0,
         progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """:func:`scan_k` for every k from ``k_from`` to ``k_to``, each k's table written to
    ``directory/k{K:04d}.parquet`` (atomically, with its settings) as it finishes and read back instead of
    recomputed when present: an interrupted scan resumes where it stopped, with the same tables (each k
    depends only on the settings and the table of k − 1, none for the first k computed; the metadata
    ``previous`` says which). Disjoint ranges of k can be scanned into one directory at once (one process
    per core) and read back together. A file with other settings raises ``ValueError`` naming it; an
    unreadable one is recomputed. Returns the tables concatenated."""
    settings = {"max_blocks": max_blocks, "starts": starts, "seed": seed}
    frames: list[pd.DataFrame] = []
    previous: pd.DataFrame | None = None
    for k in range(k_from, k_to + 1):
        path = Path(directory) / f"k{k:04d}.parquet"
        df = read_parquet_checked(path) if path.exists() else None
        if df is not None and read_metadata(path).get("scan") != settings:
            raise ValueError(f"{path} was written by a scan with settings {read_metadata(path).get('scan')}, "
                             f"not {settings}: use another directory")
        if df is None:
            t0 = time.perf_counter()
            df = scan_k(k, previous=previous, max_blocks=max_blocks, starts=starts, seed=seed)
            atomic_write_parquet(df, path, {"scan": settings, "previous": None if previous is None else k - 1})
            if progress is not None:
                progress(f"k = {k}: {len(df)} critical points, {int((df['kind'] == 'minimum').sum())} spurious "
                         f"minima ({time.perf_counter() - t0:.1f} s)")
        frames.append(df)
        previous = df
    return pd.concat(frames, ignore_index=True)


def families(table: pd.DataFrame, *, k_max: float = 100.0, asymptotic_to: float = 1e5,
             kinds: tuple[str, ...] = ("global", "minimum"), progress: Callable[[str], None] | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame, list[Family]]:
    """Follow the family of every atlas row of the given ``kinds`` in continuous k
    (:func:`jaxsym.fixedpoints.continuum.follow_family`: within its space, the first block growing).

    Returns ``(families, curves, objects)``: one ``families`` row per family (``family, isotropy, type, space,
    k_start, loss_start, birth_k, death_k, end_low, end_high, stopped_low, stopped_high, sign_change_k,
    sign_change_kind, sign_change_err, limit_kind, limit_value, limit_error, bounded_eig_blocks,
    bounded_eig_limits, bounded_eig_errors``; a family Newton cannot follow from its start has
    ``limit_kind = "not followed"``; ``stopped_*``: where tracing gave up, :func:`jaxsym.fixedpoints.continuum.trace`),
    one ``curves`` row per family and integer k on its curve up to ``k_max``
    (``k, family, type, blocks, loss, grad_norm, index, hess_min, n_distinct_eigs``), and the
    :class:`~jaxsym.fixedpoints.continuum.Family` objects (for figures)."""
    rows, curve_rows, objs = [], [], []
    for i, row in enumerate(table[table["kind"].isin(kinds)].itertuples()):
        space = tuple(int(p) for p in row.space)
        x = FixedSpace(space).project(np.asarray(row.W, np.float64).reshape(row.k, row.k))
        fam, frow, crows = _follow(i, row, space, x, k_max, asymptotic_to, progress)
        objs.append(fam)
        rows.append(frow)
        curve_rows += crows
    curves = pd.DataFrame(curve_rows).drop_duplicates(["family", "k"]) if curve_rows else pd.DataFrame()
    return pd.DataFrame(rows), curves.reset_index(drop=True), objs


def scan_families(scan: pd.DataFrame, *, k_max: float = 100.0, asymptotic_to: float = 1e5,
                  progress: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[Family]]:
    """:func:`families` for the local minima of a scan over many k (:func:`scan_k`), each family once: the
    minima are taken by increasing k and loss, and one whose (k, loss) lies on a family already traced (its
    integer-k points, loss to 1e-9) is not followed again. Returns what :func:`families` does; the families'
    ``k_start`` is the first k of the scan where each was found."""
    rows: list[dict[str, object]] = []
    curve_rows: list[dict[str, object]] = []
    objs: list[Family] = []
    seen: dict[int, list[float]] = {}
    minima = scan[scan["kind"].isin(("global", "minimum"))].sort_values(["k", "loss"], kind="stable")
    for row in minima.itertuples():
        if any(abs(f - row.loss) <= 1e-9 * max(1.0, abs(f)) for f in seen.get(int(row.k), [])):
            continue
        space = tuple(int(p) for p in row.space)
        fam, frow, crows = _follow(len(rows), row, space, np.asarray(row.x, np.float64), k_max, asymptotic_to,
                                   progress)
        objs.append(fam)
        rows.append(frow)
        curve_rows += crows
        for c in [*crows, {"k": int(row.k), "loss": float(row.loss)}]:
            seen.setdefault(int(c["k"]), []).append(float(c["loss"]))  # type: ignore[call-overload]
    curves = pd.DataFrame(curve_rows).drop_duplicates(["family", "k"]) if curve_rows else pd.DataFrame()
    return pd.DataFrame(rows), curves.reset_index(drop=True), objs


def family_of(table: pd.DataFrame, curves: pd.DataFrame, tol: float = 1e-9) -> np.ndarray:
    """For each row of an atlas or scan table, the family (of ``curves``, :func:`scan_families`) whose integer-k
    point it is (same k, loss to ``tol``), else −1."""
    by_k = {int(k): g for k, g in curves.groupby("k")} if len(curves) else {}
    out = np.full(len(table), -1, dtype=np.int64)
    for i, (k, f) in enumerate(zip(table["k"], table["loss"], strict=True)):
        g = by_k.get(int(k))
        if g is not None:
            hit = g[np.abs(g["loss"].to_numpy() - f) <= tol * max(1.0, abs(f))]
            if len(hit):
                out[i] = int(hit["family"].iloc[0])
    return out


def _follow(i: int, row: object, space: tuple[int, ...], x: np.ndarray, k_max: float, asymptotic_to: float,
            progress: Callable[[str], None] | None) -> tuple[Family, dict[str, object], list[dict[str, object]]]:
    """Family ``i`` through the atlas row ``row`` (point ``x`` of ``space``): the Family, its families row and
    its integer-k curve rows (:func:`families`)."""
    k0, iso, loss0 = int(row.k), str(row.isotropy), float(row.loss)  # type: ignore[attr-defined]
    try:
        fam = follow_family(space[1:], float(k0), x, k_max=k_max, asymptotic_to=asymptotic_to)
    except ValueError as e:  # Newton does not hold the point in its space: a row that says so
        fam = Family(space[1:], float(k0), x, [], (None, None), [], ("not followed", math.nan, math.nan), [])
        if progress is not None:
            progress(f"family {i} ({iso}, loss {loss0:.5f}): not followed: {e}")
    frow = {"family": i, "isotropy": iso, "type": row.type, "space": list(space),  # type: ignore[attr-defined]
            "k_start": k0, "loss_start": loss0, "birth_k": _nan(fam.birth_k),
            "death_k": _nan(fam.death_k), "end_low": _nan(fam.ends[0]), "end_high": _nan(fam.ends[1]),
            "stopped_low": _nan(fam.stopped[0]), "stopped_high": _nan(fam.stopped[1]),
            "sign_change_k": [float(kk) for kk, _, _ in fam.sign_changes],
            "sign_change_kind": [what for _, what, _ in fam.sign_changes],
            "sign_change_err": [float(e) for _, _, e in fam.sign_changes], "limit_kind": fam.limit[0],
            "limit_value": fam.limit[1], "limit_error": fam.limit[2],
            "bounded_eig_blocks": [b for b, _, _ in fam.bounded_eigs],
            "bounded_eig_limits": [v for _, v, _ in fam.bounded_eigs],
            "bounded_eig_errors": [e for _, _, e in fam.bounded_eigs]}
    crows = [{"k": round(c.k), "family": i, "type": row.type,  # type: ignore[attr-defined]
              "blocks": [round(float(v)) for v in blocks_at(space[1:], round(c.k))],
              "loss": c.loss, "grad_norm": c.grad_norm, "index": round(c.index),
              "hess_min": c.hess_min, "n_distinct_eigs": c.n_distinct_eigs}
             for c in fam.curve if abs(c.k - round(c.k)) < 1e-9 and c.k <= k_max]
    if progress is not None and fam.curve:
        progress(f"family {i} ({iso}, loss {loss0:.5f}): {len(fam.curve)} points, "
                 f"birth {fam.birth_k}, limit {fam.limit[0]} {fam.limit[1]:.6g} ± {fam.limit[2]:.1g}")
    return fam, frow, crows


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)
