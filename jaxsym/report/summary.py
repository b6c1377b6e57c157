"""End-of-sweep summary tables (printed with rich)."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from jaxsym.io import columns as col
from jaxsym.report.stats import status_counts


def status_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell: runs and the percentage of global / spurious / other end points (from
    :func:`jaxsym.report.stats.status_counts`, so it equals ``Results.shares()``); the cell label is shown when cells
    share ``d, k`` (other grid axes)."""
    if runs.empty:
        return pd.DataFrame(columns=[col.D, col.K, "runs", "global %", "spurious %", "other %"])
    counts = status_counts(runs)
    wide = counts.pivot_table(index=col.CELL, columns=col.STATUS, values=col.COUNT, sort=False, aggfunc="sum")
    cells = counts.drop_duplicates(col.CELL).set_index(col.CELL)
    n = cells["runs"]
    out = pd.DataFrame({col.D: cells[col.D], col.K: cells[col.K], "runs": n,
                        "global %": 100 * wide["global"] / n, "spurious %": 100 * wide["spurious"] / n})
    out["other %"] = 100 * (n - wide["global"] - wide["spurious"]) / n
    out = out.reset_index()
    several = out.groupby([col.D, col.K])[col.CELL].nunique().max() > 1  # other grid axes: show the cell
    return out if several else out.drop(columns=col.CELL)


def minima_table(minima: pd.DataFrame, per_cell: int | None = None) -> pd.DataFrame:
    """Distinct critical points; with ``per_cell``, at most that many per cell (the most frequent)."""
    cols = [col.D, col.K, col.ORBIT, col.STATUS, col.LOSS, col.COUNT, col.ISOTROPY, col.ISOTROPY_ORDER, col.HESS_MIN,
            col.N_DISTINCT_EIGS]
    if minima.empty:
        return pd.DataFrame(columns=cols)
    if per_cell is not None:
        minima = (minima.sort_values(col.COUNT, ascending=False, kind="stable").groupby(col.CELL, sort=False)
                  .head(per_cell).sort_values([col.D, col.K, col.CELL, col.ORBIT], kind="stable"))
    if col.CELL in minima and (minima.groupby([col.D, col.K])[col.CELL].nunique() > 1).any():  # other grid axes
        cols = [col.CELL, *cols]
    return minima[cols]


def markdown(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A GitHub Markdown table (no extra dependency)."""
    def fmt(v: object) -> str:
        return format(v, floatfmt) if isinstance(v, float) else str(v)
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---:" if df[c].dtype.kind in "if" else "---" for c in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def print_summary(runs: pd.DataFrame, minima: pd.DataFrame, console: Console | None = None,
                  per_cell: int = 10) -> None:
    console = console or Console(width=None if Console().is_terminal else 140)
    t = Table(title="End points per cell")
    st = status_table(runs)
    for c in st.columns:
        t.add_column(c, justify="right", no_wrap=True)
    for row in st.itertuples(index=False):
        t.add_row(*(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row))
    console.print(t)
    mt = minima_table(minima, per_cell)
    hidden = len(minima) - len(mt)
    note = f"; the {per_cell} most frequent per cell shown, {hidden} more in minima.parquet" if hidden else ""
    t = Table(title=f"Distinct critical points (modulo the symmetry group{note})")
    short = {col.ISOTROPY_ORDER: "|G|", col.HESS_MIN: "λ_min", col.N_DISTINCT_EIGS: "#eig"}
    for c in mt.columns:
        t.add_column(short.get(c, c), justify="right", no_wrap=True)
    for row in mt.itertuples(index=False):
        t.add_row(*(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row))
    console.print(t)
