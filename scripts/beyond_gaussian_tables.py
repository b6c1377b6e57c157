"""Markdown tables of docs/beyond_gaussian.md from finished sweep directories.

    python scripts/beyond_gaussian_tables.py results/cube [results/mixture ...]

For each directory: the share of end points per status and cell, then per cell the distinct spurious minima
with their isotropy types (runs per type), the other critical types, and the global minimum's isotropy and
number of distinct Hessian eigenvalues. Also written to ``DIR/tables.md``.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from jaxsym.report.summary import markdown, status_table


def _types(m: pd.DataFrame, top: int = 4, column: str = "isotropy") -> str:
    """Isotropy types with their runs, the ``top`` most frequent (and how many more types there are)."""
    counts: Counter[str] = Counter()
    for name, n in zip(m[column], m["count"]):
        counts[name] += int(n)
    ranked = sorted(counts.items(), key=lambda t: (-t[1], t[0]))
    text = ", ".join(f"{name} ({n})" for name, n in ranked[:top]) or "—"
    rest = len(ranked) - top
    return text + (f", … {rest} more types ({sum(n for _, n in ranked[top:])} runs)" if rest > 0 else "")


def tables(out: Path) -> str:
    runs = pd.read_parquet(out / "runs.parquet")
    minima = pd.read_parquet(out / "minima.parquet")
    st = status_table(runs)
    shares = runs.groupby(["d", "k"])["status"].value_counts().unstack(fill_value=0)
    for col in ("saddle", "degenerate", "not_converged", "diverged"):
        st[f"{col} %"] = [100 * shares.get(col, pd.Series(dtype=float)).get((d, k), 0) / n
                          for d, k, n in zip(st["d"], st["k"], st["runs"])]
    rows = []
    deep = "hidden_layers" in minima and (minima["hidden_layers"] > 1).any()
    for (_, k), m in minima.groupby(["d", "k"]):
        spur = m[m["status"] == "spurious"]
        glob = m[m["status"] == "global"]
        other = m[m["status"].isin(["saddle", "degenerate"])]
        row = {"k = d": k, "distinct spurious": len(spur), "spurious isotropy (runs)": _types(spur),
               "saddle/degenerate isotropy (runs)": _types(other)}
        if deep:  # whole-net isotropy is mostly trivial on continua of critical points: the first layer's too
            row["spurious 1st-layer isotropy (runs)"] = _types(spur, column="first_layer_isotropy")
            row["saddle/degenerate 1st-layer isotropy (runs)"] = _types(other, column="first_layer_isotropy")
            row["global 1st-layer isotropy (runs)"] = _types(glob, column="first_layer_isotropy")
        rows.append({
            **row,
            "global isotropy": ", ".join(sorted(set(glob["isotropy"]))) or "—",
            "global #eig": ", ".join(str(v) for v in sorted(set(glob["n_distinct_eigs"]))) or "—",
        })
    text = f"{markdown(st, '.1f')}\n\n{markdown(pd.DataFrame(rows))}\n"
    (out / "tables.md").write_text(text)
    return text


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    for arg in argv:
        print(f"## {arg}\n\n{tables(Path(arg))}")


if __name__ == "__main__":
    main(sys.argv[1:])
