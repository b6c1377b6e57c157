"""The columns of the result tables, assembled in one place for every pipeline.

A runs row is ``d, k, run, seed``, the pipeline's measured columns, ``cell, m, target``, the pipeline's
extra columns and the cell's grid overrides (``learning_rate = …``); a minima row is ``d, k``, the head
(``orbit, status, loss, count, grad_norm, hess_min, hess_max``), the symmetry and spectrum description,
``W, rep_run, cell, m, target``, extras and overrides. ``runs.parquet`` and ``minima.parquet`` start with the
stable columns of :data:`jaxsym.results.RUNS_COLUMNS` and :data:`jaxsym.results.MINIMA_COLUMNS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jaxsym.config import Cell, SweepConfig

REP_COLUMNS = ["status", "loss", "grad_norm", "hess_min", "hess_max"]  # carried by chunk representatives


def run_rows(cfg: SweepConfig, cell: Cell, runs: np.ndarray, measured: dict[str, Any],
             extra: dict[str, Any] | None = None) -> pd.DataFrame:
    """The runs rows of a chunk (one per entry of ``runs``)."""
    rows = pd.DataFrame({"d": cell.d, "k": cell.k, "run": runs, "seed": cfg.seed, **measured, "cell": cell.label,
                         "m": cell.teacher_width, "target": cell.target, **(extra or {})})
    for name, value in cell.overrides:
        rows[name] = value
    return rows


def minimum_row(cell: Cell, head: dict[str, Any], described: dict[str, Any], W: list[float], rep_run: int,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One row of ``minima.parquet``: a distinct critical point of a cell."""
    return {"d": cell.d, "k": cell.k, **head, **described, "W": W, "rep_run": rep_run, "cell": cell.label,
            "m": cell.teacher_width, "target": cell.target, **(extra or {}), **dict(cell.overrides)}


def empty_reps() -> pd.DataFrame:
    """A chunk with no distinct critical point."""
    return pd.DataFrame(columns=["local_orbit", "run", "count", "W", *REP_COLUMNS])
