"""An atlas of critical points by symmetry: the critical points of each fixed-point space, found without descent.

For the identity target (``k = d``, ``V = I``) and an isotropy type ``H = Δ(S_{p_1}×…×S_{p_r})`` with
``Σ p_i = k``, the fixed-point space ``Fix(H)`` has ``2r + r(r−1)`` parameters (:class:`~jaxsym.families.
FixedSpace`). By the principle of symmetric criticality, ∇F at a point of Fix(H) lies in Fix(H), so the critical
points of the restricted loss are critical points of F. :func:`critical_points` looks for all of them in a box
of the parameters: Levenberg–Marquardt (Newton) from ``starts`` random points in Fix(H)
(:func:`jaxsym.families.newton`), finished by the sweeps' float64 polish in the full space and accepted when
the full-space ‖∇F‖ ≤ ``accept`` (1e-10, the certificate's τ_g); distinct points are kept once (same loss to
1e-10 relative and same exact isotropy: points related by the normaliser of H, e.g. swapping two blocks of
equal size, are one orbit). Each point is then classified in the full k²-dimensional space by its Hessian
spectrum from the isotypic blocks (:func:`jaxsym.families.block_spectrum`): its *index* (the number of negative
eigenvalues, with multiplicity; 0 = a local minimum), λ_min and the number of distinct eigenvalues; and by its
exact isotropy group (:func:`jaxsym.symmetry.isotropy`), which may be larger than H (the global minimum lies in
every fixed-point space).

:func:`atlas` does this for every type with at most ``max_blocks`` blocks at one k. A random search finds
the critical points whose basins of attraction (for Newton) meet the box; it is not a proof that there are no
others.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsym.certify import Polished, make_polish
from jaxsym.config import CertifyConfig
from jaxsym.continuum import Family, blocks_at, follow_family
from jaxsym.families import FixedSpace, block_spectrum, newton
from jaxsym.naming import isotropy_type
from jaxsym.symmetry import isotropy

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


def same_point(loss_a: float, iso_a: str, loss_b: float, iso_b: str) -> bool:
    """Two critical points are one orbit when their losses agree to 1e-10 (relative) and their exact isotropy
    groups have the same name (points related by the normaliser of H, e.g. two swapped blocks of equal size)."""
    return abs(loss_a - loss_b) <= 1e-10 * max(1.0, abs(loss_b)) and iso_a == iso_b


def kind_of(loss: float, index: int) -> str:
    """``global`` (loss ≤ 1e-8), ``minimum`` (index 0: a spurious local minimum) or ``saddle``."""
    return "global" if loss <= 1e-8 else "minimum" if index == 0 else "saddle"


@functools.cache
def _full_polish(k: int) -> Callable[..., Polished]:
    """The float64 Levenberg–Marquardt polish of the sweeps (:func:`jaxsym.certify.make_polish`) for k = d,
    V = I, jitted once per k."""
    with jax.enable_x64(True):
        return jax.jit(make_polish(CertifyConfig(), np.eye(k)))


def critical_points(blocks: tuple[int, ...], *, starts: int = 32, seed: int = 0, tol: float = 1e-12,
                    accept: float = 1e-10, hess_tol: float = 1e-6) -> list[AtlasPoint]:
    """The distinct critical points found in ``Fix(Δ(S_{p_1}×…×S_{p_r}))`` from ``starts`` random starts
    (module docstring), each with full-space ‖∇F‖ ≤ ``accept`` (float64), ordered by loss. The starts come from
    ``(seed, blocks)`` alone."""
    space = FixedSpace(tuple(blocks))
    r = space.r
    rng = np.random.default_rng([seed, *space.blocks])
    lo = np.concatenate([np.full(r, BOX["a"][0]), np.full(r, BOX["b"][0]), np.full(r * r, BOX["c"][0])])
    hi = np.concatenate([np.full(r, BOX["a"][1]), np.full(r, BOX["b"][1]), np.full(r * r, BOX["c"][1])])
    found: list[AtlasPoint] = []
    polish = _full_polish(space.k)
    for _ in range(starts):
        x, _ = newton(space, rng.uniform(lo, hi), tol=tol)
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


def families(table: pd.DataFrame, *, k_max: float = 100.0, asymptotic_to: float = 1e5,
             kinds: tuple[str, ...] = ("global", "minimum"), progress: Callable[[str], None] | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame, list[Family]]:
    """Follow the family of every atlas row of the given ``kinds`` in continuous k
    (:func:`jaxsym.continuum.follow_family`: within its space, the first block growing).

    Returns ``(families, curves, objects)``: one ``families`` row per family (``family, isotropy, type, space,
    k_start, loss_start, birth_k, death_k, end_low, end_high, stopped_low, stopped_high, sign_change_k,
    sign_change_kind, sign_change_err, limit_kind, limit_value, limit_error, bounded_eig_blocks,
    bounded_eig_limits, bounded_eig_errors``; a family Newton cannot follow from its start has
    ``limit_kind = "not followed"``; ``stopped_*``: where tracing gave up, :func:`jaxsym.continuum.trace`),
    one ``curves`` row per family and integer k on its curve up to ``k_max``
    (``k, family, type, blocks, loss, grad_norm, index, hess_min, n_distinct_eigs``), and the
    :class:`~jaxsym.continuum.Family` objects (for figures)."""
    rows, curve_rows, objs = [], [], []
    for i, row in enumerate(table[table["kind"].isin(kinds)].itertuples()):
        space = tuple(int(p) for p in row.space)
        x = FixedSpace(space).project(np.asarray(row.W, np.float64).reshape(row.k, row.k))
        try:
            fam = follow_family(space[1:], float(row.k), x, k_max=k_max, asymptotic_to=asymptotic_to)
        except ValueError as e:  # Newton does not hold the point in its space: a row that says so
            fam = Family(space[1:], float(row.k), x, [], (None, None), [], ("not followed", math.nan, math.nan), [])
            if progress is not None:
                progress(f"family {i} ({row.isotropy}, loss {row.loss:.5f}): not followed: {e}")
        objs.append(fam)
        rows.append({"family": i, "isotropy": row.isotropy, "type": row.type, "space": list(space),
                     "k_start": int(row.k), "loss_start": float(row.loss), "birth_k": _nan(fam.birth_k),
                     "death_k": _nan(fam.death_k), "end_low": _nan(fam.ends[0]), "end_high": _nan(fam.ends[1]),
                     "stopped_low": _nan(fam.stopped[0]), "stopped_high": _nan(fam.stopped[1]),
                     "sign_change_k": [float(kk) for kk, _, _ in fam.sign_changes],
                     "sign_change_kind": [what for _, what, _ in fam.sign_changes],
                     "sign_change_err": [float(e) for _, _, e in fam.sign_changes], "limit_kind": fam.limit[0],
                     "limit_value": fam.limit[1], "limit_error": fam.limit[2],
                     "bounded_eig_blocks": [b for b, _, _ in fam.bounded_eigs],
                     "bounded_eig_limits": [v for _, v, _ in fam.bounded_eigs],
                     "bounded_eig_errors": [e for _, _, e in fam.bounded_eigs]})
        for c in fam.curve:
            if abs(c.k - round(c.k)) < 1e-9 and c.k <= k_max:
                curve_rows.append({"k": round(c.k), "family": i, "type": row.type,
                                   "blocks": [round(float(v)) for v in blocks_at(space[1:], round(c.k))],
                                   "loss": c.loss, "grad_norm": c.grad_norm, "index": round(c.index),
                                   "hess_min": c.hess_min, "n_distinct_eigs": c.n_distinct_eigs})
        if progress is not None and fam.curve:
            progress(f"family {i} ({row.isotropy}, loss {row.loss:.5f}): {len(fam.curve)} points, "
                     f"birth {fam.birth_k}, limit {fam.limit[0]} {fam.limit[1]:.6g} ± {fam.limit[2]:.1g}")
    curves = pd.DataFrame(curve_rows).drop_duplicates(["family", "k"]) if curve_rows else pd.DataFrame()
    return pd.DataFrame(rows), curves.reset_index(drop=True), objs


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def plot_families(fams: list[Family], labels: list[str], path: str | Path) -> None:
    """Loss (log–log) and λ_min (symlog) against continuous k, one curve per family; births marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    floor = 1e-7
    for i, (fam, label) in enumerate(zip(fams, labels, strict=True)):
        color = f"C{i % 10}"
        if not fam.curve:
            continue
        ks = np.array([c.k for c in fam.curve])
        loss = np.array([c.loss for c in fam.curve])
        if fam.limit[0] != "zero":  # the global minimum (loss 0 up to rounding) has λ_min only
            keep = loss > floor
            axes[0].loglog(ks[keep], loss[keep], lw=1, color=color, label=label)
        axes[1].plot(ks, [c.hess_min for c in fam.curve], lw=1, color=color, label=label)
        for kk, what, _ in fam.sign_changes:
            if what == "birth":
                axes[1].plot([kk], [0.0], "o", ms=4, color=color)
    axes[0].set_xlabel("k = d (continuous)")
    axes[0].set_ylabel("loss F of the spurious families")
    axes[1].legend(fontsize=6, ncol=2)
    axes[1].axhline(0, color="0.5", lw=0.8)
    axes[1].set_xscale("log")
    axes[1].set_yscale("symlog", linthresh=1e-3)
    axes[1].set_xlabel("k = d (continuous)")
    axes[1].set_ylabel(r"$\lambda_{\min}$ (dots: births, saddle → minimum)")
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    fig.savefig(Path(path).with_suffix(".pdf"))
    plt.close(fig)
