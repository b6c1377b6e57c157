"""An atlas of critical points by symmetry: the critical points of each fixed-point space, found without descent.

For the identity target (``k = d``, ``V = I``) and an isotropy type ``H = Δ(S_{p_1}×…×S_{p_r})`` with
``Σ p_i = k``, the fixed-point space ``Fix(H)`` has ``2r + r(r−1)`` parameters
(:class:`jaxsym.fixedpoints.space.Space`). By the principle of symmetric criticality, ∇F at a point of Fix(H)
lies in Fix(H), so the critical points of the restricted loss are critical points of F. :func:`critical_points`
looks for all of them in a box of the parameters with the one search (:func:`jaxsym.fixedpoints.search.search`:
Levenberg–Marquardt from ``starts`` random points in Fix(H)), each solve finished by the sweeps' float64 polish
in the full space and accepted when the full-space ‖∇F‖ ≤ ``accept`` (1e-10, the certificate's τ_g); distinct
points are kept once (same loss to 1e-10 relative and same exact isotropy: points related by the normaliser
of H, e.g. swapping two blocks of equal size, are one orbit). Each point is then classified in the full
k²-dimensional space by its block spectrum (:func:`jaxsym.fixedpoints.spectrum.classify`): its *index* (the
number of negative eigenvalues, with multiplicity; 0 = a local minimum), λ_min and the number of distinct
eigenvalues, and its kind in the sweeps' words (``global``, ``spurious``, ``saddle``); and by its exact isotropy
group (:func:`jaxsym.symmetry.group.isotropy`), which may be larger than H (the global minimum lies in every
fixed-point space).

:func:`atlas` does this for every type with at most ``max_blocks`` blocks at one k. :func:`scan` does it for
every k of a range with restricted computations only (:func:`scan_k`: the same search, vmapped over all starts
of all types, acceptance by the exact full-space gradient norm), which reaches k in the hundreds, and
:func:`scan_families` follows the family of each local minimum found, once
(:func:`jaxsym.fixedpoints.families.follow_family`). A random search finds the critical points whose basins of
attraction (for Newton) meet the box; it is not a proof that there are no others.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsym.certify.exact import Polished, make_polish
from jaxsym.config import CertifyConfig
from jaxsym.fixedpoints.families import Family, blocks_at, curve_point, follow_family
from jaxsym.fixedpoints.search import (
    DEAD,
    Job,
    random_jobs,
    row_norms,
    same_loss,
    same_point,
    search,
    solve_batched,
    types_up_to,
)
from jaxsym.fixedpoints.solve import Solution, grad_tol_at
from jaxsym.fixedpoints.space import Space
from jaxsym.fixedpoints.spectrum import classify, kind_of
from jaxsym.io import columns as col
from jaxsym.io.results import atomic_write_parquet, read_metadata, read_parquet_checked
from jaxsym.symmetry.group import isotropy
from jaxsym.symmetry.naming import isotropy_type


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


@functools.cache
def _full_polish(k: int) -> Callable[..., Polished]:
    """The float64 Levenberg–Marquardt polish of the sweeps (:func:`jaxsym.certify.exact.make_polish`) for k = d,
    V = I, jitted once per k."""
    with jax.enable_x64(True):
        return jax.jit(make_polish(CertifyConfig(), np.eye(k)))


@dataclass(frozen=True)
class _Polished:
    """A restricted solve finished in the full space: the space, ``W``, F, ‖∇F‖ and the exact isotropy."""

    space: Space
    W: np.ndarray
    loss: float
    grad_norm: float
    iso: object


def _polished(accept: float) -> Callable[[Job, Solution], _Polished | None]:
    """The atlas's ``finish``: the restricted derivatives are NaN where two rows align (θ = 0, e.g. the global
    minimum), so every solve is finished and checked in the full space with the NaN-free closed forms (the
    polish is equivariant, so the point stays in Fix(H)); kept when ‖∇F‖ ≤ ``accept`` and no neuron is dead."""

    def finish(job: Job, sol: Solution) -> _Polished | None:
        space = job.space
        with jax.enable_x64(True):
            W0 = np.asarray(space.embed(jnp.asarray(sol.z, jnp.float64)), np.float64)
            if not np.all(np.isfinite(W0)):
                return None
            pol = _full_polish(sum(space.blocks))(jnp.asarray(W0), jnp.float64(0.0), jnp.asarray(False))
            W, loss, gnorm = np.asarray(pol.W), float(pol.loss), float(pol.grad_norm)
        if not gnorm <= accept or np.min(np.linalg.norm(W, axis=1)) < DEAD:  # not critical, or a dead neuron
            return None
        return _Polished(space, W, loss, gnorm, isotropy(W, np.eye(len(W))))

    return finish


def _same(a: _Polished, b: _Polished) -> bool:
    return same_point(a.loss, a.iso.name, b.loss, b.iso.name)  # type: ignore[attr-defined]


def _atlas_point(q: _Polished) -> AtlasPoint:
    """A distinct point classified in the full k²-dimensional space by its block spectrum."""
    x = q.space.project(q.W)
    c = classify(q.space, x)
    iso = q.iso
    return AtlasPoint(q.space.blocks, np.asarray(x), q.W, q.loss, q.grad_norm, round(c.index), c.hess_min,
                      c.n_distinct_eigs, iso.name, iso.order, list(iso.neuron_orbits))  # type: ignore[attr-defined]


def critical_points(blocks: tuple[int, ...], *, starts: int = 32, seed: int = 0, accept: float = 1e-10
                    ) -> list[AtlasPoint]:
    """The distinct critical points found in ``Fix(Δ(S_{p_1}×…×S_{p_r}))`` from ``starts`` random starts
    (module docstring), each with full-space ‖∇F‖ ≤ ``accept`` (float64), ordered by loss. The starts come from
    ``(seed, blocks)`` alone."""
    groups = search(random_jobs([Space(tuple(blocks))], starts, seed), _polished(accept), _same)
    return sorted((_atlas_point(g[0]) for g in groups), key=lambda p: p.loss)


def atlas(k: int, *, max_blocks: int = 3, types: list[tuple[int, ...]] | None = None, starts: int = 32,
          seed: int = 0) -> pd.DataFrame:
    """The atlas at ``k``: every distinct critical point found in the fixed-point space of each type (all types
    with at most ``max_blocks`` blocks unless ``types`` is given), one row each, deduplicated across types by
    loss and exact isotropy (a point found in several spaces is listed under the first, the largest group).

    Columns: ``k, space, type, isotropy, isotropy_order, neuron_orbits, loss, grad_norm, index, hess_min,
    n_distinct_eigs, kind`` (the sweeps' ``global``, ``spurious`` for index 0, else ``saddle``), ``W``.
    """
    spaces = [Space(tuple(b)) for b in (types if types is not None else types_up_to(k, max_blocks))]
    rows: list[dict[str, object]] = []
    for g in search(random_jobs(spaces, starts, seed), _polished(1e-10), _same):
        p = _atlas_point(g[0])
        # the k-independent type of a diagonal product group; any other group is named as it is
        typ = isotropy_type(p.neuron_orbits, k) if p.isotropy.startswith("Δ") else p.isotropy
        rows.append({col.K: k, col.SPACE: list(p.space), col.TYPE: typ,
                     col.ISOTROPY: p.isotropy, col.ISOTROPY_ORDER: p.isotropy_order,
                     col.NEURON_ORBITS: p.neuron_orbits, col.LOSS: p.loss, col.GRAD_NORM: p.grad_norm,
                     col.INDEX: p.index, col.HESS_MIN: p.hess_min, col.N_DISTINCT_EIGS: p.n_distinct_eigs,
                     col.KIND: kind_of(p.loss, p.index), col.W: p.W.ravel().tolist()})
    df = pd.DataFrame(rows)
    return df.sort_values([col.LOSS, col.ISOTROPY], kind="stable").reset_index(drop=True) if len(df) else df


# --------------------------------------------------------------------------------------------------
# Many k at once: the restricted problem only
# --------------------------------------------------------------------------------------------------
def scan_k(k: int, *, previous: pd.DataFrame | None = None, max_blocks: int = 3, starts: int = 16,
           seed: int = 0, accept: float = 1e-10, classify_all_to: int = 20) -> pd.DataFrame:
    """The atlas at k from restricted computations only, for k up to hundreds (:func:`atlas` polishes and
    classifies in the k²-dimensional space, which it cannot afford there).

    Newton from ``starts`` random points of each type with at most ``max_blocks`` blocks (the same as
    :func:`atlas`'s), plus, when ``previous`` (the scan at k − 1) is given, from each of its local minima with
    the first block grown by one (its family of :mod:`jaxsym.fixedpoints.families` one step on), all solved
    together in vmapped batches (:func:`jaxsym.fixedpoints.search.solve_batched`). Kept: full-space ‖∇F‖ ≤
    ``accept`` (exact from the restricted gradient, :func:`jaxsym.fixedpoints.space.full_norm`) and no row of
    norm below 1e-8. Solves whose losses agree to 1e-10 (:func:`jaxsym.fixedpoints.search.same_loss`) are one
    point, the first in job order (random starts first, largest group first): this also merges a continuum of
    critical points with parallel neurons (their norms can be shared out along it at the same loss), which
    :func:`atlas` merges by its isotropy test.

    Classified (index, λ_min and distinct eigenvalues from the block spectrum of
    :func:`jaxsym.fixedpoints.spectrum.classify`; exact isotropy): every point when ``k ≤ classify_all_to``, else
    every point with no negative eigenvalue on any space it was found in (``trivial_neg`` = 0: only those can be
    local minima). The others are saddles for certain and keep ``index``, ``isotropy`` and ``type`` empty
    (``index_at_least`` holds the certain lower bound).

    Columns: those of :func:`atlas` with ``x`` (the parameters in ``space``) instead of ``W``,
    ``isotropy_order`` as a decimal string (k! outgrows 64 bits from k = 21), and
    ``index_at_least``, ``hits`` (solves that ended at the point) and ``found_by`` (``random``, or
    ``continued``: reached only from the previous k's minima).
    """
    jobs = random_jobs([Space(b) for b in types_up_to(k, max_blocks)], starts, seed)
    if previous is not None and len(previous):
        for row in previous[previous[col.INDEX] == 0].itertuples():
            grown = (int(row.space[0]) + 1, *(int(q) for q in row.space[1:]))
            jobs.append(Job(Space(grown), np.asarray(row.x, np.float64), "continued"))

    def finish(job: Job, sol: Solution) -> tuple[Job, Solution] | None:
        if not (sol.grad_norm <= accept and np.isfinite(sol.loss)) or row_norms(job.space, sol.z)[0] < DEAD:  # type: ignore[attr-defined]
            return None  # not critical; a dead neuron
        return job, sol

    groups = search(jobs, finish, lambda a, b: same_loss(a[1].loss, b[1].loss),  # type: ignore[attr-defined]
                    solve_all=lambda js: solve_batched(js, grad_tol_at(k)))
    rows = []
    for g in groups:
        job, sol = g[0]
        saddle = any(s.trivial_neg > 0 for _, s in g)  # type: ignore[attr-defined]
        space = job.space.blocks
        row: dict[str, object] = {col.K: k, col.SPACE: list(space), col.TYPE: None, col.ISOTROPY: None,
                                  col.ISOTROPY_ORDER: None, col.NEURON_ORBITS: None, col.LOSS: sol.loss,  # type: ignore[attr-defined]
                                  col.GRAD_NORM: sol.grad_norm, col.INDEX: None, col.INDEX_AT_LEAST: int(saddle),
                                  col.HESS_MIN: None, col.N_DISTINCT_EIGS: None, col.KIND: "saddle" if saddle else None,
                                  col.HITS: len(g), col.FOUND_BY: job.origin, col.X: sol.z.tolist()}
        if k <= classify_all_to or not saddle:
            cp = curve_point(space[1:], float(k), sol.z, sol.grad_norm)
            with jax.enable_x64(True):
                W = np.asarray(job.space.embed(jnp.asarray(sol.z)), np.float64)
            iso = isotropy(W, np.eye(k))
            index = round(cp.index)
            row.update(type=isotropy_type(list(iso.neuron_orbits), k) if iso.name.startswith("Δ") else iso.name,
                       isotropy=iso.name, isotropy_order=str(iso.order), neuron_orbits=list(iso.neuron_orbits),
                       index=index, index_at_least=index, hess_min=cp.hess_min,
                       n_distinct_eigs=cp.n_distinct_eigs, kind=kind_of(sol.loss, index))  # type: ignore[attr-defined]
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        df = df.astype({col.INDEX: "Int64", col.N_DISTINCT_EIGS: "Int64"})
    return df.sort_values(col.LOSS, kind="stable").reset_index(drop=True) if len(df) else df


def scan(k_from: int, k_to: int, directory: Path, *, max_blocks: int = 3, starts: int = 16, seed: int = 0,
         progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """:func:`scan_k` for every k from ``k_from`` to ``k_to``, each k's table written to
    ``directory/k{K:04d}.parquet`` (atomically, with its settings) as it finishes and read back instead of
    recomputed when present: an interrupted scan resumes where it stopped, with the same tables (each k
    depends only on the settings and the table of k − 1, none for the first k computed; the metadata
    ``previous`` says which). Disjoint ranges of k can be scanned into one directory at once (one process
    per core) and read back together. A file with other settings raises ``ValueError`` naming it; an
    unreadable one is recomputed. Returns the tables concatenated."""
    settings = dict(max_blocks=max_blocks, starts=starts, seed=seed)
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
                progress(f"k = {k}: {len(df)} critical points, {int((df[col.KIND] == 'spurious').sum())} spurious "
                         f"minima ({time.perf_counter() - t0:.1f} s)")
        frames.append(df)
        previous = df
    return pd.concat(frames, ignore_index=True)


def families(table: pd.DataFrame, *, k_max: float = 100.0, asymptotic_to: float = 1e5,
             kinds: tuple[str, ...] = ("global", "spurious"), progress: Callable[[str], None] | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame, list[Family]]:
    """Follow the family of every atlas row of the given ``kinds`` in continuous k
    (:func:`jaxsym.fixedpoints.families.follow_family`: within its space, the first block growing).

    Returns ``(families, curves, objects)``: one ``families`` row per family (``family, isotropy, type, space,
    k_start, loss_start, birth_k, death_k, end_low, end_high, stopped_low, stopped_high, sign_change_k,
    sign_change_kind, sign_change_err, limit_kind, limit_value, limit_error, bounded_eig_blocks,
    bounded_eig_limits, bounded_eig_errors``; a family Newton cannot follow from its start has
    ``limit_kind = "not followed"``; ``stopped_*``: where tracing gave up,
    :func:`jaxsym.fixedpoints.continuation.trace`), one ``curves`` row per family and integer k on its curve up
    to ``k_max`` (``k, family, type, blocks, loss, grad_norm, index, hess_min, n_distinct_eigs``), and the
    :class:`~jaxsym.fixedpoints.families.Family` objects (for figures)."""
    rows, curve_rows, objs = [], [], []
    for i, row in enumerate(table[table[col.KIND].isin(kinds)].itertuples()):
        space = tuple(int(p) for p in row.space)
        x = Space(space).project(np.asarray(row.W, np.float64).reshape(row.k, row.k))
        fam, frow, crows = _follow(i, row, space, x, k_max, asymptotic_to, progress)
        objs.append(fam)
        rows.append(frow)
        curve_rows += crows
    curves = pd.DataFrame(curve_rows).drop_duplicates([col.FAMILY, col.K]) if curve_rows else pd.DataFrame()
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
    minima = scan[scan[col.KIND].isin(("global", "spurious"))].sort_values([col.K, col.LOSS], kind="stable")
    for row in minima.itertuples():
        if any(abs(f - row.loss) <= 1e-9 * max(1.0, abs(f)) for f in seen.get(int(row.k), [])):
            continue
        space = tuple(int(p) for p in row.space)
        fam, frow, crows = _follow(len(rows), row, space, np.asarray(row.x, np.float64), k_max, asymptotic_to,
                                   progress)
        objs.append(fam)
        rows.append(frow)
        curve_rows += crows
        for c in [*crows, {col.K: int(row.k), col.LOSS: float(row.loss)}]:
            seen.setdefault(int(c[col.K]), []).append(float(c[col.LOSS]))  # type: ignore[call-overload]
    curves = pd.DataFrame(curve_rows).drop_duplicates([col.FAMILY, col.K]) if curve_rows else pd.DataFrame()
    return pd.DataFrame(rows), curves.reset_index(drop=True), objs


def family_of(table: pd.DataFrame, curves: pd.DataFrame, tol: float = 1e-9) -> np.ndarray:
    """For each row of an atlas or scan table, the family (of ``curves``, :func:`scan_families`) whose integer-k
    point it is (same k, loss to ``tol``), else −1."""
    by_k = {int(k): g for k, g in curves.groupby(col.K)} if len(curves) else {}
    out = np.full(len(table), -1, dtype=np.int64)
    for i, (k, f) in enumerate(zip(table[col.K], table[col.LOSS], strict=True)):
        g = by_k.get(int(k))
        if g is not None:
            hit = g[np.abs(g[col.LOSS].to_numpy() - f) <= tol * max(1.0, abs(f))]
            if len(hit):
                out[i] = int(hit[col.FAMILY].iloc[0])
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
    frow = {col.FAMILY: i, col.ISOTROPY: iso, col.TYPE: row.type, col.SPACE: list(space),  # type: ignore[attr-defined]
            col.K_START: k0, col.LOSS_START: loss0, col.BIRTH_K: _nan(fam.birth_k),
            col.DEATH_K: _nan(fam.death_k), col.END_LOW: _nan(fam.ends[0]), col.END_HIGH: _nan(fam.ends[1]),
            col.STOPPED_LOW: _nan(fam.stopped[0]), col.STOPPED_HIGH: _nan(fam.stopped[1]),
            col.SIGN_CHANGE_K: [float(kk) for kk, _, _ in fam.sign_changes],
            col.SIGN_CHANGE_KIND: [what for _, what, _ in fam.sign_changes],
            col.SIGN_CHANGE_ERR: [float(e) for _, _, e in fam.sign_changes], col.LIMIT_KIND: fam.limit[0],
            col.LIMIT_VALUE: fam.limit[1], col.LIMIT_ERROR: fam.limit[2],
            col.BOUNDED_EIG_BLOCKS: [b for b, _, _ in fam.bounded_eigs],
            col.BOUNDED_EIG_LIMITS: [v for _, v, _ in fam.bounded_eigs],
            col.BOUNDED_EIG_ERRORS: [e for _, _, e in fam.bounded_eigs]}
    crows = [{col.K: round(c.k), col.FAMILY: i, col.TYPE: row.type,  # type: ignore[attr-defined]
              col.BLOCKS: [round(float(v)) for v in blocks_at(space[1:], round(c.k))],
              col.LOSS: c.loss, col.GRAD_NORM: c.grad_norm, col.INDEX: round(c.index),
              col.HESS_MIN: c.hess_min, col.N_DISTINCT_EIGS: c.n_distinct_eigs}
             for c in fam.curve if abs(c.k - round(c.k)) < 1e-9 and c.k <= k_max]
    if progress is not None and fam.curve:
        progress(f"family {i} ({iso}, loss {loss0:.5f}): {len(fam.curve)} points, "
                 f"birth {fam.birth_k}, limit {fam.limit[0]} {fam.limit[1]:.6g} ± {fam.limit[2]:.1g}")
    return fam, frow, crows


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)
