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
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsym.certify import Polished, make_polish
from jaxsym.config import CertifyConfig
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


def _same_point(loss_a: float, iso_a: str, loss_b: float, iso_b: str) -> bool:
    """Two critical points are one orbit when their losses agree to 1e-10 (relative) and their exact isotropy
    groups have the same name (points related by the normaliser of H, e.g. two swapped blocks of equal size)."""
    return abs(loss_a - loss_b) <= 1e-10 * max(1.0, abs(loss_b)) and iso_a == iso_b


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
        if any(_same_point(p.loss, p.isotropy, loss, iso.name) for p in found):
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
            if any(_same_point(float(q["loss"]), str(q["isotropy"]), p.loss, p.isotropy) for q in rows):
                continue
            kind = "global" if p.loss <= 1e-8 else "minimum" if p.index == 0 else "saddle"
            # the k-independent type of a diagonal product group; any other group is named as it is
            typ = isotropy_type(p.neuron_orbits, k) if p.isotropy.startswith("Δ") else p.isotropy
            rows.append({"k": k, "space": list(p.space), "type": typ,
                         "isotropy": p.isotropy, "isotropy_order": p.isotropy_order,
                         "neuron_orbits": p.neuron_orbits, "loss": p.loss, "grad_norm": p.grad_norm,
                         "index": p.index, "hess_min": p.hess_min, "n_distinct_eigs": p.n_distinct_eigs,
                         "kind": kind, "W": p.W.ravel().tolist()})
    df = pd.DataFrame(rows)
    return df.sort_values(["loss", "isotropy"], kind="stable").reset_index(drop=True) if len(df) else df
