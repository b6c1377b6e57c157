"""End-of-sweep summary tables (printed with rich)."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from jaxsym.report.stats import status_counts


def status_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell: runs and the percentage of global / spurious / other end points (from
    :func:`jaxsym.report.stats.status_counts`, so it equals ``Results.shares()``); the cell label is shown when cells
    share ``d, k`` (other grid axes)."""
    if runs.empty:
        return pd.DataFrame(columns=["d", "k", "runs", "global %", "spurious %", "other %"])
    counts = status_counts(runs)
    wide = counts.pivot_table(index="cell", columns="status", values="count", sort=False, aggfunc="sum")
    cells = counts.drop_duplicates("cell").set_index("cell")
    n = cells["runs"]
    out = pd.DataFrame({"d": cells["d"], "k": cells["k"], "runs": n,
                        "global %": 100 * wide["global"] / n, "spurious %": 100 * wide["spurious"] / n})
    out["other %"] = 100 * (n - wide["global"] - wide["spurious"]) / n
    out = out.reset_index()
    several = out.groupby(["d", "k"])["cell"].nunique().max() > 1  # other grid axes: show the cell
    return out if several else out.drop(columns="cell")


def minima_table(minima: pd.DataFrame, per_cell: int | None = None) -> pd.DataFrame:
    """Distinct critical points; with ``per_cell``, at most that many per cell (the most frequent)."""
    cols = ["d", "k", "orbit", "status", "loss", "count", "isotropy", "isotropy_order", "hess_min",
            "n_distinct_eigs"]
    if minima.empty:
        return pd.DataFrame(columns=cols)
    if per_cell is not None:
        minima = (minima.sort_values("count", ascending=False, kind="stable").groupby("cell", sort=False)
                  .head(per_cell).sort_values(["d", "k", "cell", "orbit"], kind="stable"))
    if "cell" in minima and (minima.groupby(["d", "k"])["cell"].nunique() > 1).any():  # other grid axes
        cols = ["cell", *cols]
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
    short = {"isotropy_order": "|G|", "hess_min": "λ_min", "n_distinct_eigs": "#eig"}
    for c in mt.columns:
        t.add_column(short.get(c, c), justify="right", no_wrap=True)
    for row in mt.itertuples(index=False):
        t.add_row(*(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row))
    console.print(t)
