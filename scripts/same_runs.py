"""Run by run, two results directories of the same sweep (same config and seed, e.g. before and after a change of
the certificate): per cell, the share of runs with the same status and with the same distinct critical point.

Orbit ids are numbered per directory (by status, loss and first run), so two runs are at the same point when
their orbits have the same status and losses within ``--loss-tol``; runs at no critical point compare by status.

    .venv/bin/python scripts/same_runs.py results/before results/after
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def point_of(runs: pd.DataFrame, minima: pd.DataFrame) -> pd.Series:
    """The (status, loss) of each run's orbit, NaN loss for runs at none."""
    key = minima.set_index(["cell", "orbit"])["loss"]
    idx = pd.MultiIndex.from_arrays([runs["cell"], runs["orbit"]])
    return pd.Series(key.reindex(idx).to_numpy(), index=runs.index)


def compare(a_dir: Path, b_dir: Path, loss_tol: float) -> pd.DataFrame:
    a, b = (pd.read_parquet(d / "runs.parquet") for d in (a_dir, b_dir))
    ma, mb = (pd.read_parquet(d / "minima.parquet") for d in (a_dir, b_dir))
    a = a.sort_values(["cell", "run"]).reset_index(drop=True)
    b = b.sort_values(["cell", "run"]).reset_index(drop=True)
    if not (a[["cell", "run"]].values == b[["cell", "run"]].values).all():
        sys.exit("the two directories do not hold the same runs")
    la, lb = point_of(a, ma), point_of(b, mb)
    same_status = a["status"] == b["status"]
    same_point = same_status & ((la.isna() & lb.isna()) | ((la - lb).abs() <= loss_tol))
    rows = []
    for cell, g in a.groupby("cell", sort=False):
        i = g.index
        diff = (a.loc[i, "status"] + " → " + b.loc[i, "status"])[~same_status[i]].value_counts()
        rows.append({"cell": cell, "runs": len(i), "same status": f"{100 * same_status[i].mean():.2f}%",
                     "same point": f"{100 * same_point[i].mean():.2f}%",
                     "steps equal": f"{100 * (a.loc[i, 'steps'] == b.loc[i, 'steps']).mean():.1f}%",
                     "differences (first → second)": ", ".join(f"{k} ×{v}" for k, v in diff.items()) or "none"})
    rows.append({"cell": "all", "runs": len(a), "same status": f"{100 * same_status.mean():.2f}%",
                 "same point": f"{100 * same_point.mean():.2f}%",
                 "steps equal": f"{100 * (a['steps'] == b['steps']).mean():.1f}%",
                 "differences (first → second)": ""})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    ap.add_argument("--loss-tol", type=float, default=1e-9)
    args = ap.parse_args()
    table = compare(args.first, args.second, args.loss_tol)
    cols = list(table.columns)
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---:" if c in ("runs",) else "---" for c in cols) + "|")
    for r in table.itertuples(index=False):
        print("| " + " | ".join(str(v) for v in r) + " |")


if __name__ == "__main__":
    main()
