"""Counting what a sweep found: status shares per cell with binomial intervals.

Every number a researcher reads about "how often" comes from here, so the summary table, ``Results.shares()``
and the report's figures count the same runs the same way:

- a **cell** is one grid point, every grid axis included (``d, k, m, target`` and any ``[train]`` setting
  listed in ``[grid]``); rows are grouped by the cell label, never pooled across axes;
- a share ``p̂ = x/n`` comes with the **Wilson score interval** at level ``1 − α`` (``z = Φ⁻¹(1 − α/2)``):

      centre = (p̂ + z²/2n) / (1 + z²/n),   half = z √(p̂(1 − p̂)/n + z²/4n²) / (1 + z²/n),

  which, unlike the normal interval ``p̂ ± z√(p̂(1−p̂)/n)``, stays inside [0, 1] and is not empty at
  ``x = 0`` or ``x = n`` (Wilson 1927; Brown, Cai & DasGupta 2001 recommend it for any n).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from jaxsym.certify.exact import STATUSES
from jaxsym.io import columns as col

CELL_COLUMNS = (col.D, col.K, col.M, col.TARGET)  # the fixed grid axes every runs row carries


def wilson(successes: np.ndarray | Sequence[float], n: np.ndarray | Sequence[float], level: float = 0.95
           ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval ``(lower, upper)`` of the binomial proportions ``successes / n`` at ``level``
    (module docstring); ``n = 0`` gives ``(0, 1)``."""
    x = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = norm.ppf(0.5 + level / 2)
    m = np.maximum(n, 1.0)
    p = x / m
    centre = (p + z * z / (2 * m)) / (1 + z * z / m)
    half = z * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / (1 + z * z / m)
    # the interval always contains p̂ (at p̂ = 0 or 1 a bound equals it, up to rounding: pin it there)
    lo = np.where(n > 0, np.clip(np.minimum(centre - half, p), 0.0, 1.0), 0.0)
    hi = np.where(n > 0, np.clip(np.maximum(centre + half, p), 0.0, 1.0), 1.0)
    return lo, hi


def cell_axes(runs: pd.DataFrame, axes: Sequence[str] = ()) -> list[str]:
    """The columns that name a cell: ``d, k, m, target`` (those present) and the extra grid ``axes``."""
    return [c for c in (*CELL_COLUMNS, *axes) if c in runs.columns]


def status_counts(runs: pd.DataFrame, axes: Sequence[str] = (), level: float = 0.95) -> pd.DataFrame:
    """One row per cell and status: ``cell``, the cell's axes (:func:`cell_axes`), ``status``, ``count``,
    ``runs`` (of the cell), ``share = count/runs`` and its Wilson interval ``lo, hi`` at ``level``.

    Every status of :data:`jaxsym.certify.exact.STATUSES` appears for every cell (count 0 where none ended so), so
    that a share of zero still carries its upper bound. Cells keep the order of their first row (the config's
    order in a merged ``runs.parquet``); a table without a ``cell`` column (hand-made) is grouped by its axes."""
    key = [col.CELL] if col.CELL in runs.columns else cell_axes(runs, axes)
    cols = [*dict.fromkeys([*key, *cell_axes(runs, axes)])]
    out_cols = [*cols, col.STATUS, col.COUNT, "runs", "share", "lo", "hi"]
    if runs.empty:
        return pd.DataFrame(columns=out_cols)
    cells = runs.groupby(key, sort=False)[cols].first().reset_index(drop=True)
    counts = runs.groupby([*key, col.STATUS], sort=False).size()
    totals = runs.groupby(key, sort=False).size()
    rows = []
    for cell in cells.to_dict("records"):
        k = tuple(cell[c] for c in key)
        for status in STATUSES:
            rows.append({**cell, col.STATUS: status, col.COUNT: int(counts.get((*k, status), 0)),
                         "runs": int(totals[k if len(k) > 1 else k[0]])})
    out = pd.DataFrame(rows, columns=[*cols, col.STATUS, col.COUNT, "runs"])
    out["share"] = out[col.COUNT] / out["runs"].clip(lower=1)
    out["lo"], out["hi"] = wilson(out[col.COUNT].to_numpy(), out["runs"].to_numpy(), level)
    return out[out_cols]
