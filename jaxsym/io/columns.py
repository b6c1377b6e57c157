"""The columns of the result tables, assembled in one place for every pipeline.

A runs row is ``d, k, run, seed``, the pipeline's measured columns, ``cell, m, target``, the pipeline's
extra columns and the cell's grid overrides (``learning_rate = …``); a minima row is ``d, k``, the head
(``orbit, status, loss, count, grad_norm, hess_min, hess_max``), the symmetry and spectrum description,
``W, rep_run, cell, m, target``, extras and overrides. ``runs.parquet`` and ``minima.parquet`` start with the
stable columns of :data:`jaxsym.io.results.RUNS_COLUMNS` and :data:`jaxsym.io.results.MINIMA_COLUMNS`.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jaxsym.config import Cell, SweepConfig

# The column names: code names a column by its constant, never by the bare string (tests/test_columns.py
# checks that these are exactly the names declared in columns.toml, and that the package spells no column name
# out elsewhere). Adding a column: its entry in columns.toml and its constant here.
D, K, M, RUN, SEED, CELL, TARGET = "d", "k", "m", "run", "seed", "cell", "target"
LOSS, GRAD_NORM, STEPS, STATUS, ORBIT = "loss", "grad_norm", "steps", "status", "orbit"
TRAIN_LOSS, TRAIN_GRAD_NORM, HANDOFF = "train_loss", "train_grad_norm", "handoff"
POLISH_ITERS, POLISH_SHIFT, HESS_MIN, HESS_MAX = "polish_iters", "polish_shift", "hess_min", "hess_max"
LOSS_SE, GRAD_SE, HESS_MIN_SE, N_NULL = "loss_se", "grad_se", "hess_min_se", "n_null"
DISTRIBUTION, HIDDEN_LAYERS, TRAIN_OUTPUT, W = "distribution", "hidden_layers", "train_output", "W"
COUNT, REP_RUN, ISOTROPY, ISOTROPY_ORDER = "count", "rep_run", "isotropy", "isotropy_order"
NEURON_ORBITS, COORDINATE_ORBITS, LAYER_ORBITS = "neuron_orbits", "coordinate_orbits", "layer_orbits"
ISOTROPY_EXACT, FIRST_LAYER_ISOTROPY = "isotropy_exact", "first_layer_isotropy"
N_DISTINCT_EIGS, EIG_VALUES, EIG_MULTS, EIGS = "n_distinct_eigs", "eig_values", "eig_mults", "eigs"
SPACE, TYPE, INDEX, INDEX_AT_LEAST, KIND = "space", "type", "index", "index_at_least", "kind"  # the atlas
HITS, FOUND_BY, X, FAMILY = "hits", "found_by", "x", "family"
K_START, LOSS_START, BIRTH_K, DEATH_K = "k_start", "loss_start", "birth_k", "death_k"  # the families
END_LOW, END_HIGH, STOPPED_LOW, STOPPED_HIGH = "end_low", "end_high", "stopped_low", "stopped_high"
SIGN_CHANGE_K, SIGN_CHANGE_KIND, SIGN_CHANGE_ERR = "sign_change_k", "sign_change_kind", "sign_change_err"
LIMIT_KIND, LIMIT_VALUE, LIMIT_ERROR = "limit_kind", "limit_value", "limit_error"
BOUNDED_EIG_BLOCKS, BOUNDED_EIG_LIMITS = "bounded_eig_blocks", "bounded_eig_limits"
BOUNDED_EIG_ERRORS = "bounded_eig_errors"
EXTRA, ZERO_EIGS, ORIGIN, SPLIT_OF = "extra", "zero_eigs", "origin", "split_of"  # wider students
BLOCKS, FULL_GRAD_NORM, BOUNDED_EIGS, LARGEST = "blocks", "full_grad_norm", "bounded_eigs", "largest"  # a family
LOCAL_ORBIT, CHUNK = "local_orbit", "chunk"  # a chunk's representatives (reps files), not in the result tables

REP_COLUMNS = [STATUS, LOSS, GRAD_NORM, HESS_MIN, HESS_MAX]  # carried by chunk representatives


class Column(NamedTuple):
    """One column of a result table, as documented (README "Columns", ``jaxsym columns``).

    Attributes:
      name: the column name.   dtype: its Parquet type (``int64``, ``float64``, ``string``, ``list<float64>``…).
      unit: what its numbers measure (``—`` for labels and counts of things named in ``meaning``).
      meaning: one sentence.
      where: which sweeps write it: ``all``, ``exact`` (the closed-form float64 certificate), ``sampled``
        (the empirical certificate of sampled objectives without a closed form), or ``option`` (written when a
        setting asks for it); in the atlas, ``atlas`` (``jaxsym atlas --k K``) or ``scan`` (``--k-to``).
    """

    name: str
    dtype: str
    unit: str
    meaning: str
    where: str = "all"


def _declared() -> dict[str, tuple[Column, ...]]:
    """The tables of columns.toml: a minima entry giving only its name is declared as in runs."""
    raw = tomllib.loads(resources.files("jaxsym.io").joinpath("columns.toml").read_text(encoding="utf-8"))
    runs = {e["name"]: e for e in raw["runs"]}
    return {table: tuple(Column(**(runs[e["name"]] if len(e) == 1 else e)) for e in entries)
            for table, entries in raw.items()}


_TABLES = _declared()
RUNS: tuple[Column, ...] = _TABLES["runs"]
MINIMA: tuple[Column, ...] = _TABLES["minima"]
ATLAS: tuple[Column, ...] = _TABLES["atlas"]
FAMILIES: tuple[Column, ...] = _TABLES["families"]
WIDE: tuple[Column, ...] = _TABLES["wide"]
FAMILY_CURVE: tuple[Column, ...] = _TABLES["family"]
SPECTRA: tuple[Column, ...] = _TABLES["spectra"]

GRID_AXIS = Column("⟨setting⟩", "as set", "as set", "each [train] setting listed in [grid] (e.g. learning_rate) "
                   "is a column of both tables, with the cell's value")

WHERE = {"all": "every sweep", "exact": "closed-form sweeps", "sampled": "sampled sweeps without a closed form",
         "option": "when asked for"}
ATLAS_WHERE = {"all": "the atlas and the scan", "atlas": "`jaxsym atlas --k K`",
               "scan": "`jaxsym atlas --k K --k-to K2`"}


def markdown(columns: tuple[Column, ...], grid: bool = True, where: dict[str, str] | None = WHERE) -> str:
    """A GitHub Markdown table of ``columns`` (and the grid axes' row): name, dtype, unit, meaning and, with a
    ``where`` vocabulary, which runs write it."""
    rows = ["| column | dtype | unit | meaning |" + (" written by |" if where else ""),
            "|" + "---|" * (4 + bool(where))]
    for c in (*columns, *((GRID_AXIS,) if grid else ())):
        rows.append(f"| `{c.name}` | {c.dtype} | {c.unit} | {c.meaning} |"
                    + (f" {where.get(c.where, c.where)} |" if where else ""))
    return "\n".join(rows)


def columns_markdown() -> str:
    """The README's "Columns" section body: every table (``jaxsym columns`` prints it)."""
    tables = [("`runs.parquet`, one row per run", markdown(RUNS)),
              ("`minima.parquet`, one row per distinct critical point modulo the symmetry group", markdown(MINIMA)),
              ("`atlas.parquet` of `jaxsym atlas`, one row per distinct critical point of the fixed-point spaces at "
               "one k", markdown(ATLAS, grid=False, where=ATLAS_WHERE)),
              ("`families.parquet` of `jaxsym atlas --k-max`, one row per family of critical points followed in "
               "continuous k", markdown(FAMILIES, grid=False, where=None)),
              ("`wide.parquet` of `jaxsym atlas --extra N`, one row per critical point of a student of k = d + N "
               "neurons (found, or split from a k = d minimum)", markdown(WIDE, grid=False, where=None)),
              ("`family.parquet` of `jaxsym family`, one row per integer k on the family",
               markdown(FAMILY_CURVE, grid=False, where=None)),
              ("`spectra.parquet` of `jaxsym family`, one row per k with a spectrum",
               markdown(SPECTRA, grid=False, where=None))]
    return "\n\n".join(f"{title}:\n\n{table}" for title, table in tables)


def run_rows(cfg: SweepConfig, cell: Cell, runs: np.ndarray, measured: dict[str, Any],
             extra: dict[str, Any] | None = None) -> pd.DataFrame:
    """The runs rows of a chunk (one per entry of ``runs``)."""
    rows = pd.DataFrame({D: cell.d, K: cell.k, RUN: runs, SEED: cfg.seed, **measured, CELL: cell.label,
                         M: cell.teacher_width, TARGET: cell.target, **(extra or {})})
    for name, value in cell.overrides:
        rows[name] = value
    return rows


def minimum_row(cell: Cell, head: dict[str, Any], described: dict[str, Any], weights: list[float],
                rep_run: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One row of ``minima.parquet``: a distinct critical point of a cell."""
    return {D: cell.d, K: cell.k, **head, **described, W: weights, REP_RUN: rep_run, CELL: cell.label,
            M: cell.teacher_width, TARGET: cell.target, **(extra or {}), **dict(cell.overrides)}


def empty_reps() -> pd.DataFrame:
    """A chunk with no distinct critical point."""
    return pd.DataFrame(columns=[LOCAL_ORBIT, RUN, COUNT, W, *REP_COLUMNS])
