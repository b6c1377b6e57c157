"""The columns of the result tables, assembled in one place for every pipeline.

A runs row is ``d, k, run, seed``, the pipeline's measured columns, ``cell, m, target``, the pipeline's
extra columns and the cell's grid overrides (``learning_rate = …``); a minima row is ``d, k``, the head
(``orbit, status, loss, count, grad_norm, hess_min, hess_max``), the symmetry and spectrum description,
``W, rep_run, cell, m, target``, extras and overrides. ``runs.parquet`` and ``minima.parquet`` start with the
stable columns of :data:`jaxsym.io.results.RUNS_COLUMNS` and :data:`jaxsym.io.results.MINIMA_COLUMNS`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jaxsym.config import Cell, SweepConfig

REP_COLUMNS = ["status", "loss", "grad_norm", "hess_min", "hess_max"]  # carried by chunk representatives


class Column(NamedTuple):
    """One column of a result table, as documented (README "Columns", ``jaxsym columns``).

    Attributes:
      name: the column name.   dtype: its Parquet type (``int64``, ``float64``, ``string``, ``list<float64>``…).
      unit: what its numbers measure (``—`` for labels and counts of things named in ``meaning``).
      meaning: one sentence.
      where: which sweeps write it: ``all``, ``exact`` (the closed-form float64 certificate), ``sampled``
        (the empirical certificate of sampled objectives without a closed form), or ``option`` (written when a
        setting asks for it).
    """

    name: str
    dtype: str
    unit: str
    meaning: str
    where: str = "all"


_SIZES = (Column("d", "int64", "—", "input dimension of the cell"),
          Column("k", "int64", "—", "student neurons of the cell"))
_CELL = (Column("cell", "string", "—", "the cell's label, e.g. d6-k6 or d6-k6-learning_rate=0.05: unique per grid "
                "point"),
         Column("m", "int64", "—", "teacher neurons of the cell"),
         Column("target", "string", "—", "the teacher: identity, orthonormal or gaussian"))
_ERRORS = (Column("loss_se", "float64", "F", "standard error of `loss` (batch means of the held-out sample)",
                  "sampled"),
           Column("grad_se", "float64", "‖∇F‖", "standard error of `grad_norm`", "sampled"))
_NETWORK = (Column("distribution", "string", "—", "the input law", "sampled"),
            Column("hidden_layers", "int64", "—", "hidden layers of the network", "sampled"),
            Column("train_output", "bool", "—", "the output weights were trained", "sampled"))

RUNS: tuple[Column, ...] = (
    *_SIZES,
    Column("run", "int64", "—", "run index in the cell, 0 … runs−1; the run's randomness is fold_in(cell key, run)"),
    Column("seed", "int64", "—", "the sweep's seed"),
    Column("loss", "float64", "F", "population loss at the run's end point: where it is a certified critical "
           "point, its orbit's (the row of minima.parquet; the loss is group-invariant); sampled: the held-out "
           "estimate; else at the end of descent"),
    Column("grad_norm", "float64", "‖∇F‖_F", "gradient norm at the same point (exact: float64 closed form; "
           "sampled: held-out estimate)"),
    Column("steps", "int64", "steps", "optimizer steps the run took (a handed-off run: until its hand-off)"),
    Column("status", "string", "—", "global, spurious, saddle, degenerate, not_converged or diverged (the "
           "certificate's thresholds are in sweep.json and the table's metadata)"),
    Column("orbit", "int64", "—", "the run's distinct critical point: `orbit` of minima.parquet in the same cell; "
           "−1 when the run ended at none"),
    Column("train_loss", "float64", "F", "loss at the end of descent, in the training dtype", "exact"),
    Column("train_grad_norm", "float64", "‖∇F‖_F", "gradient norm at the end of descent, in the training dtype",
           "exact"),
    Column("polish_iters", "int32", "iterations", "Newton (Levenberg–Marquardt) iterations of the float64 polish "
           "at the end of the chunk (0 for a run certified by the hand-off)", "exact"),
    Column("polish_shift", "float64", "‖ΔW‖_F", "distance from the end of descent to the certified point (equal "
           "across chunkings to the polish's precision, ≈ 1e-11: the point may come from the run's own polish or "
           "from its orbit's representative)", "exact"),
    Column("hess_min", "float64", "eigenvalue", "smallest Hessian eigenvalue at the certified point (its "
           "orbit's; NaN when the run ended at no critical point)", "exact"),
    Column("hess_max", "float64", "eigenvalue", "largest Hessian eigenvalue, likewise", "exact"),
    Column("handoff", "bool", "—", "the run left descent through the hand-off test (its end point is where "
           "continued descent provably ends, within the test's model)", "exact"),
    *_CELL,
    *_ERRORS,
    *_NETWORK,
    Column("W", "list<float64>", "weights", "the end point's weights flattened (layer by layer, row-major; then "
           "the output weights); closed-form sweeps write it with save_weights = true", "sampled"),
)

MINIMA: tuple[Column, ...] = (
    *_SIZES,
    Column("orbit", "int64", "—", "id of the distinct critical point in its cell, ordered by (status, loss, "
           "first run)"),
    Column("status", "string", "—", "the certificate of its representative (as in runs.parquet)"),
    Column("loss", "float64", "F", "population loss at the representative"),
    Column("count", "int64", "runs", "runs of the cell that ended in this orbit"),
    Column("grad_norm", "float64", "‖∇F‖_F", "gradient norm at the representative"),
    Column("hess_min", "float64", "eigenvalue", "smallest Hessian eigenvalue at the representative"),
    Column("hess_max", "float64", "eigenvalue", "largest Hessian eigenvalue"),
    Column("isotropy", "string", "—", "name of the isotropy group, e.g. Δ(S5×S1)"),
    Column("isotropy_order", "int64", "elements", "order of the isotropy group"),
    Column("neuron_orbits", "list<int64>", "neurons", "sizes of its orbits on the neurons, descending"),
    Column("coordinate_orbits", "list<int64>", "coordinates", "sizes of its orbits on the input coordinates"),
    Column("n_distinct_eigs", "int64", "—", "distinct Hessian eigenvalues (grouped within the eigenvalue "
           "tolerance)"),
    Column("eig_values", "list<float64>", "eigenvalue", "the distinct Hessian eigenvalues, ascending"),
    Column("eig_mults", "list<int64>", "—", "their multiplicities"),
    Column("W", "list<float64>", "weights", "the representative's weights flattened row-major (W of shape (k, d); "
           "sampled: every layer, then the output weights), float64"),
    Column("rep_run", "int64", "—", "the run whose end point is the representative (the orbit's first run)"),
    *_CELL,
    Column("layer_orbits", "list<list<int64>>", "units", "orbit sizes of the isotropy group on every vertex "
           "layer (inputs first)", "sampled"),
    Column("isotropy_exact", "bool", "—", "the isotropy search finished (false: the group found is a "
           "subgroup)", "sampled"),
    Column("first_layer_isotropy", "string", "—", "isotropy of the first layer alone", "sampled"),
    Column("eigs", "list<float64>", "eigenvalue", "every Hessian eigenvalue (finite differences of the held-out "
           "gradient)", "sampled"),
    *_ERRORS,
    Column("hess_min_se", "float64", "eigenvalue", "jackknife standard error of `hess_min`", "sampled"),
    Column("n_null", "int64", "—", "Hessian null directions explained by the network's rescaling symmetry",
           "sampled"),
    *_NETWORK,
)

GRID_AXIS = Column("⟨setting⟩", "as set", "as set", "each [train] setting listed in [grid] (e.g. learning_rate) "
                   "is a column of both tables, with the cell's value")

WHERE = {"all": "every sweep", "exact": "closed-form sweeps", "sampled": "sampled sweeps without a closed form",
         "option": "when asked for"}


def markdown(columns: tuple[Column, ...]) -> str:
    """A GitHub Markdown table of ``columns``: name, dtype, unit, meaning, written by."""
    rows = ["| column | dtype | unit | meaning | written by |", "|---|---|---|---|---|"]
    for c in (*columns, GRID_AXIS):
        rows.append(f"| `{c.name}` | {c.dtype} | {c.unit} | {c.meaning} | {WHERE.get(c.where, c.where)} |")
    return "\n".join(rows)


def columns_markdown() -> str:
    """The README's "Columns" section body: both tables (``jaxsym columns`` prints it)."""
    return (f"`runs.parquet`, one row per run:\n\n{markdown(RUNS)}\n\n"
            f"`minima.parquet`, one row per distinct critical point modulo the symmetry group:\n\n{markdown(MINIMA)}")


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
