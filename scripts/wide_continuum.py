#!/usr/bin/env python3
"""The new spurious minima of students one neuron wider than the teacher, followed in continuous d (docs/atlas.md).

    .venv/bin/python scripts/wide_continuum.py 12 [--max-blocks 3] [--starts 32] [--k-max 100] [--to 1e5]
                                                 [--dense-at D …]
                                                 [--out FILE.parquet]

At teacher size ``d`` (``V = I_d``, student ``k = d + 1``) every ``Fix(Δ(S_p) × S_1)`` with at most
``--max-blocks`` paired blocks is searched from ``--starts`` random points
(:func:`jaxsym.fixedpoints.wide.critical_points`, classified there by the dense Hessian); each spurious local
minimum found is followed as one family in real d by :func:`jaxsym.fixedpoints.families.follow_family` with
``extra=1``: the first block real (``d − Σ tail`` neurons), the other blocks and the extra neuron fixed, down to
the domain's edge (or a fold) and up to ``--k-max`` in steps of 1/2, then geometrically to ``--to``; every point
classified by the isotypic blocks (:func:`jaxsym.fixedpoints.spectrum.components`, the extra neuron's blocks
included); λ_min's sign changes located by bisection to 1e-8; the loss limit fitted on ``d ≥ k_max``
(:func:`jaxsym.fixedpoints.families.loss_limit`); where λ_min changes sign beyond ``--k-max`` (not bisected
there), the first such step of the curve is given as a bracket. With ``--dense-at D …`` every family is also
classified by the dense Hessian (:func:`jaxsym.fixedpoints.wide.classify`) at those integer d, next to the
blocks' index and λ_min there.

A point found in several spaces (a larger isotropy lies in finer spaces too) is followed once, in the space
of fewest blocks in which it was found. Prints one Markdown row per family and writes them to ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from jaxsym.fixedpoints.families import Family, follow_family, space_at
from jaxsym.fixedpoints.search import same_point, types_up_to
from jaxsym.fixedpoints.wide import classify, critical_points
from jaxsym.report.summary import markdown

jax.config.update("jax_enable_x64", True)


def _changes(fam: Family, what: str) -> str:
    """The family's bisected sign changes of one kind ("birth" or "death"), as ``d ± error``."""
    return "; ".join(f"{k:.9f} ± {e:.1g}" for k, w, e in fam.sign_changes if w == what) or "–"


def _end(fold: float | None, stopped: float | None, otherwise: str) -> str:
    """How one side of a family ends: a fold, a tracing that stopped, else ``otherwise``."""
    if fold is not None:
        return f"fold at {fold:.6f}"
    return f"stopped at {stopped:.6f}" if stopped is not None else otherwise


def family_rows(d: int, *, max_blocks: int, starts: int, k_max: float, to: float, dense_at: tuple[int, ...] = ()
                ) -> list[dict[str, object]]:
    """One row per spurious minimum of the ``k = d + 1`` problem found at ``d``: its family in real d (and, at
    each integer of ``dense_at`` the curve passes, its index and λ_min by the dense Hessian next to the
    blocks')."""
    rows: list[dict[str, object]] = []
    seen: list[tuple[float, str]] = []
    for blocks in sorted(types_up_to(d, max_blocks), key=len):
        for p in critical_points(blocks, 1, starts=starts):
            if p.index != 0 or p.loss <= 1e-10 or any(same_point(p.loss, p.isotropy, *q) for q in seen):
                continue
            seen.append((p.loss, p.isotropy))
            t0 = time.perf_counter()
            tail = tuple(blocks[1:])
            fam = follow_family(tail, float(d), p.z, k_max=k_max, asymptotic_to=to, extra=1)
            at_d = min(fam.curve, key=lambda c: abs(c.k - d))
            # beyond k_max sign changes are not bisected (families.follow_family): bracket the first one there
            far = [c for c in fam.curve if c.k >= k_max]
            turns = [(a.k, b.k) for a, b in itertools.pairwise(far) if np.sign(a.hess_min) != np.sign(b.hess_min)]
            kind, a, a_err = fam.limit
            checks = {}
            for dd in dense_at:
                on = [c for c in fam.curve if abs(c.k - dd) < 1e-9]
                if on:
                    w = classify(space_at(tail, float(dd), 1), on[0].x, "check")
                    checks[f"d = {dd}: index, λ_min (dense / blocks)"] = (
                        f"{w.index} / {on[0].index:.0f}, {w.hess_min:.6g} / {on[0].hess_min:.6g}")
            rows.append({
                "isotropy at d": p.isotropy, "tail": str(tail), "loss at d": p.loss,
                "dense index at d": p.index, "block index at d": at_d.index, "λ_min at d": at_d.hess_min,
                "births (d ± err)": _changes(fam, "birth"), "deaths": _changes(fam, "death"),
                "low end": _end(fam.ends[0], fam.stopped[0], "edge"),
                "high end": _end(fam.ends[1], fam.stopped[1], f"{fam.curve[-1].k:.3g}"),
                "λ_min at far end": fam.curve[-1].hess_min,
                "λ_min's sign beyond k_max": ("changes in {:.4g}…{:.4g}".format(*turns[0]) if turns else "kept")
                + (f" ({len(turns)} changes)" if len(turns) > 1 else ""),
                "loss limit": kind, "limit value": a, "± err": a_err,
                **checks, "seconds": round(time.perf_counter() - t0, 1),
            })
            print(f"{p.isotropy} {p.loss:.6f}: births {rows[-1]['births (d ± err)']}, limit {kind} {a:.6g} ± "
                  f"{a_err:.1g} ({rows[-1]['seconds']} s)", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("d", type=int, help="the teacher's size at which the minima are searched (student d + 1)")
    ap.add_argument("--max-blocks", type=int, default=3)
    ap.add_argument("--starts", type=int, default=32)
    ap.add_argument("--k-max", type=float, default=100.0, help="steps of 1/2 up to here, then ×1.1")
    ap.add_argument("--to", type=float, default=1e5, help="the largest d followed")
    ap.add_argument("--dense-at", type=int, nargs="*", default=[],
                    help="integer d (≤ --k-max) where every family is also classified by the dense Hessian")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    rows = family_rows(a.d, max_blocks=a.max_blocks, starts=a.starts, k_max=a.k_max, to=a.to,
                       dense_at=tuple(a.dense_at))
    table = pd.DataFrame(rows)
    print("\n" + markdown(table))
    if a.out is not None:
        table.to_parquet(a.out)


if __name__ == "__main__":
    main()
