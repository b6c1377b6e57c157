"""Which critical points descent reaches: the atlas joined with a sweep, discovery curves, and the unseen mass.

**Atlas coverage.** The atlas (:mod:`jaxsym.fixedpoints.atlas`) lists the critical points of every fixed-point
space at ``k = d`` for the identity target, found without descent; a sweep's ``minima.parquet`` lists the orbits
its runs ended at. An atlas point and a sweep orbit of the same cell are one orbit when their exact isotropy
groups have the same name and their losses agree to 1e-9 (relative above 1). For every atlas minimum
(``global`` or ``spurious``), :func:`atlas_coverage` gives the runs of each cell that reached it, their share and
an exact (Clopper–Pearson) interval at ``level``: for a minimum no run reached, the upper end
``1 − (1 − level)^{1/N}`` (about 3/N at 95%, the "rule of three") bounds its basin share under the sweep's
initialisation.

**Discovery and the unseen mass.** Runs are independent draws of an end point, so the distinct orbits seen among
the first n runs (a *discovery curve*, :func:`discovery`) flattens as the common ones are all found. The
Good–Turing estimate of the probability that the next run ends at an orbit not yet seen is ``f₁/N``, with f₁ the
number of orbits reached by exactly one of the N runs (Good 1953); with few singletons it says more runs will
rarely find anything new, with many it says the sweep has not seen the landscape's tail (:func:`unseen`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta

from jaxsym.certify.exact import STATUSES
from jaxsym.io import columns as col
from jaxsym.report.stats import cell_axes

CRITICAL = tuple(s for s in STATUSES if s not in ("not_converged", "diverged"))  # runs that ended at an orbit
MINIMA = STATUSES[:2]  # global, spurious
SAME_LOSS = 1e-9  # an atlas point and a sweep orbit with the same isotropy and losses this close are one orbit


def clopper_pearson(successes: np.ndarray | Sequence[float], n: np.ndarray | Sequence[float], level: float = 0.95
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial interval ``(lower, upper)`` of ``successes / n`` at ``level``: ``upper = 1 − (α/2)^{1/n}``
    at zero successes is replaced by the one-sided ``1 − α^{1/n}`` (α = 1 − level), the bound a share never
    observed has."""
    x = np.asarray(successes, np.float64)
    n = np.asarray(n, np.float64)
    a = 1.0 - level
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(x > 0, beta.ppf(a / 2, x, n - x + 1), 0.0)
        hi = np.where(x < n, beta.ppf(1 - a / 2, x + 1, n - x), 1.0)
        hi = np.where(x == 0, 1.0 - a ** (1.0 / np.maximum(n, 1.0)), hi)
    return np.where(n > 0, lo, 0.0), np.where(n > 0, hi, 1.0)


def _cells(runs: pd.DataFrame) -> list[str]:
    """The columns that name a cell: ``cell``, or for a hand-made table the axes of
    :func:`jaxsym.report.stats.cell_axes` (as :func:`jaxsym.report.stats.status_counts` groups)."""
    return [col.CELL] if col.CELL in runs.columns else cell_axes(runs)


def _by_cell(runs: pd.DataFrame) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    """Each cell's label (its naming columns and values) and runs, in the order of their first row."""
    key = _cells(runs)
    for name, g in runs.groupby(key, sort=False):
        yield dict(zip(key, name, strict=True)), g


def discovery(runs: pd.DataFrame, *, points: int = 40) -> pd.DataFrame:
    """Per cell, the distinct orbits among its first n runs (in run order) at about ``points`` values of n
    (log-spaced, the last n = all runs): columns ``cell`` (or the cell's axes), ``n``, ``orbits`` (critical
    points of any status), ``minima`` (global or spurious)."""
    rows = []
    for label, g in _by_cell(runs.sort_values(col.RUN, kind="stable")):
        crit = np.flatnonzero(g[col.STATUS].isin(CRITICAL).to_numpy() & (g[col.ORBIT].to_numpy() >= 0))
        n = len(g)
        first = np.zeros(n, bool)  # the runs that found an orbit first
        first[crit[np.unique(g[col.ORBIT].to_numpy()[crit], return_index=True)[1]]] = True
        first_min = first & g[col.STATUS].isin(MINIMA).to_numpy()
        at = np.unique(np.round(np.geomspace(1, n, min(points, n))).astype(int)) if n else np.zeros(0, int)
        cum, cum_min = np.cumsum(first), np.cumsum(first_min)
        rows += [{**label, "n": int(m), "orbits": int(cum[m - 1]), "minima": int(cum_min[m - 1])} for m in at]
    return pd.DataFrame(rows, columns=[*_cells(runs), "n", "orbits", "minima"])


def unseen(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell: ``runs`` N, ``orbits`` seen, ``singletons`` f₁ (orbits reached by one run), and ``unseen_mass``
    = f₁/N, the Good–Turing estimate of the probability that one more run ends at an orbit not yet seen
    (module docstring)."""
    rows = []
    for label, g in _by_cell(runs):
        sizes = g[g[col.STATUS].isin(CRITICAL) & (g[col.ORBIT] >= 0)].groupby(col.ORBIT).size()
        f1 = int((sizes == 1).sum())
        rows.append({**label, "runs": len(g), "orbits": len(sizes), "singletons": f1, "unseen_mass": f1 / len(g)})
    return pd.DataFrame(rows, columns=[*_cells(runs), "runs", "orbits", "singletons", "unseen_mass"])


def atlas_coverage(atlas: pd.DataFrame, runs: pd.DataFrame, minima: pd.DataFrame, *, level: float = 0.95
                   ) -> pd.DataFrame:
    """Every atlas minimum (``kind`` global or spurious) against every sweep cell with ``d = k`` = its k and the
    identity target: ``cell, k, isotropy, atlas_loss, kind, reached`` (runs of the cell that ended at it),
    ``runs`` (of the cell), ``share`` and its exact interval ``lo, hi`` at ``level`` (:func:`clopper_pearson`;
    for a minimum never reached, ``hi`` is the bound on its basin share), and ``orbit`` (the sweep's orbit id,
    −1 when none). Sweep minima the atlas does not list (e.g. types with more blocks than it searched) follow,
    with ``kind`` their sweep status and ``isotropy`` theirs, ``atlas_loss`` NaN."""
    atlas = atlas.assign(kind=atlas[col.KIND].replace({"minimum": "spurious"}))  # tables written before one vocabulary
    mins = atlas[atlas[col.KIND].isin(MINIMA) & atlas[col.K].isin(runs[col.K].unique())]
    cols = [*_cells(runs), col.K, col.ISOTROPY, "atlas_loss", col.KIND, col.ORBIT, "reached", "runs", "share", "lo",
            "hi"]
    rows = []
    for label, g in _by_cell(runs):
        d, k = int(g[col.D].iloc[0]), int(g[col.K].iloc[0])
        target = g[col.TARGET].iloc[0] if col.TARGET in g else "identity"
        if d != k or target != "identity" or int(g[col.M].iloc[0] if col.M in g else d) != d:
            continue
        cell_min = minima
        for c, v in label.items():
            if c in minima.columns:
                cell_min = cell_min[cell_min[c] == v]
        matched: set[int] = set()
        for a in mins[mins[col.K] == k].itertuples():
            hit = cell_min[(cell_min[col.ISOTROPY] == a.isotropy)
                           & (np.abs(cell_min[col.LOSS] - a.loss) <= SAME_LOSS * max(1.0, abs(a.loss)))]
            orbit = int(hit[col.ORBIT].iloc[0]) if len(hit) else -1
            matched.update(int(o) for o in hit[col.ORBIT])
            reached = int((g[col.ORBIT].isin(hit[col.ORBIT]) & g[col.STATUS].isin(CRITICAL)).sum())
            rows.append({**label, col.K: k, col.ISOTROPY: a.isotropy, "atlas_loss": float(a.loss), col.KIND: a.kind,
                         col.ORBIT: orbit, "reached": reached, "runs": len(g)})
        for m in cell_min[cell_min[col.STATUS].isin(MINIMA) & ~cell_min[col.ORBIT].isin(list(matched))].itertuples():
            reached = int(((g[col.ORBIT] == m.orbit) & g[col.STATUS].isin(CRITICAL)).sum())
            rows.append({**label, col.K: k, col.ISOTROPY: m.isotropy, "atlas_loss": np.nan, col.KIND: m.status,
                         col.ORBIT: int(m.orbit), "reached": reached, "runs": len(g)})
    out = pd.DataFrame(rows, columns=cols[:-3])
    out["share"] = out["reached"] / out["runs"].clip(lower=1)
    out["lo"], out["hi"] = clopper_pearson(out["reached"].to_numpy(), out["runs"].to_numpy(), level)
    return out[cols]
