#!/usr/bin/env python3
"""Tables of docs/atlas.md from `jaxsym atlas` output directories.

    .venv/bin/python scripts/atlas_tables.py minima results/atlas6 … results/atlas12   # local minima per k
    .venv/bin/python scripts/atlas_tables.py families results/atlas10                 # families in continuous k
    .venv/bin/python scripts/atlas_tables.py summary results/atlas6                   # counts over all families
    .venv/bin/python scripts/atlas_tables.py wide results/wide6-1 … results/wide8-2   # `jaxsym atlas --extra N`
    .venv/bin/python scripts/atlas_tables.py scan results/scan100 [K …]               # `jaxsym atlas --k-to`
    .venv/bin/python scripts/atlas_tables.py scanfamilies results/scan100              # its families (--k-max)
    .venv/bin/python scripts/atlas_tables.py scancover results/scan100                 # minima on those families

``minima``: per directory, the distinct critical points at its k, the local minima (index 0, the global one
included) and each spurious minimum's isotropy, loss and λ_min. ``families``: one row per family of
``families.parquet`` (births, deaths, folds, the loss's limit) and the limits of its bounded Hessian
eigenvalues. ``wide``: per directory of ``jaxsym atlas --k d --extra n``, the spurious minima at k = d, how many
of their split points are saddles (and their smallest index), and the spurious minima found at k = d + n.
``scan``: per k of a scan (all, or the k given), the critical points found and classified, the spurious minima
by number of blocks of their isotropy and the lowest one. ``scanfamilies``: the families of a scan's minima in
order of birth, and counts of their limits. ``scancover``: per k scanned, how many of its local minima lie on
those families.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pandas as pd

SPURIOUS = ("spurious", "minimum")  # a spurious minimum's kind (older tables: "minimum")


def header(columns: list[str], right: int) -> None:
    """A Markdown table's header: ``columns``, the first ``right`` of them right-aligned."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---:" if i < right else "---" for i in range(len(columns))) + "|")


def minima(dirs: list[Path]) -> None:
    header(["k = d", "distinct critical points", "local minima (index 0)",
            "spurious local minima: isotropy, loss (λ_min)"], 3)
    for d in dirs:
        t = pd.read_parquet(d / "atlas.parquet")
        k = int(t["k"].iloc[0])
        t = t[t["k"] == k]
        spur = t[t["kind"].isin(SPURIOUS)].sort_values("loss")
        cells = "; ".join(f"{r.isotropy} {r.loss:.5f} ({r.hess_min:.4f})" for r in spur.itertuples())
        print(f"| {k} | {len(t)} | {int((t['index'] == 0).sum())} | {cells} |")


def _k(v: float) -> str:
    return "–" if pd.isna(v) else f"{v:.8f}"


def families(d: Path) -> None:
    f = pd.read_parquet(d / "families.parquet")
    k0 = int(f["k_start"].iloc[0])
    print(f"| family | isotropy at k = {k0} | loss at k = {k0} | birth (saddle → minimum) | other sign changes of "
          "λ_min | folds | loss as k → ∞ | bounded Hessian eigenvalues as k → ∞ |")
    print("|---:|---|---:|---:|---|---|---|---|")
    for r in f.itertuples():
        errs = getattr(r, "sign_change_err", None)
        errs = list(errs) if errs is not None else [0.0] * len(r.sign_change_k)
        others = ", ".join(f"{kk:.8f} ({what}{f', ±{e:.0e}' if e > 1e-8 else ''})"
                           for kk, what, e in zip(r.sign_change_k, r.sign_change_kind, errs, strict=True)
                           if kk != r.birth_k) or "–"
        folds = ", ".join(_k(v) for v in (r.end_low, r.end_high) if not pd.isna(v)) or "–"
        limit = {"zero": "0 (global)", "a/k": f"a/k, a = {r.limit_value:.6f} ± {r.limit_error:.0e}",
                 "constant": f"{r.limit_value:.6f} ± {r.limit_error:.0e}"}.get(r.limit_kind, r.limit_kind)
        if r.limit_kind == "constant" and abs(r.limit_value) <= 3 * r.limit_error:
            limit += " (0 within the error)"
        eigs = sorted({round(v, 5) for v, e in zip(r.bounded_eig_limits, r.bounded_eig_errors, strict=True)
                       if e < 1e-4})
        print(f"| {r.family} | {r.isotropy} | {max(r.loss_start, 0.0):.5f} | {_k(r.birth_k)} | {others} | {folds} | "
              f"{limit} | {', '.join(f'{v:.5f}' for v in eigs)} |")


def summary(d: Path) -> None:
    """Counts over the families of a ``--families all`` run: by the kind of their start point, births, deaths,
    folds and limits."""
    f = pd.read_parquet(d / "families.parquet")
    t = pd.read_parquet(d / "atlas.parquet")
    k0 = int(f["k_start"].iloc[0])
    start = t[(t["k"] == k0) & (t["family"] >= 0)].set_index("family")["kind"]
    f = f.assign(kind=f["family"].map(start))
    print("| families started from | count | with a birth | with a death | with a fold | tracing stopped | loss → 0 "
          "| → a/k | → constant | grows | unclear | not followed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, g in f.groupby("kind", sort=False):
        n = {v: int((g["limit_kind"] == v).sum()) for v in ("zero", "a/k", "constant", "grows", "unclear",
                                                             "not followed")}
        print(f"| {kind} | {len(g)} | {int(g['birth_k'].notna().sum())} | "
              f"{int(g['sign_change_kind'].map(lambda v: 'death' in list(v)).sum())} | "
              f"{int((g['end_low'].notna() | g['end_high'].notna()).sum())} | "
              f"{int((g['stopped_low'].notna() | g['stopped_high'].notna()).sum())} | {n['zero']} | {n['a/k']} | "
              f"{n['constant']} | {n['grows']} | {n['unclear']} | {n['not followed']} |")


def _blocks(iso: str) -> int:
    """Blocks of a diagonal product type: Δ(S7×S2×S1) → 3, ΔS8 → 1."""
    return iso.count("×") + 1


def _distinct_entries(space: list[int], x: list[float]) -> int:
    """Distinct entries of the embedded k × k point (a_s, b_s where p_s > 1, c_st for s ≠ t), values closer than
    1e-6 counted once (the points are located to ‖∇F‖ ≤ 1e-10, their entries to about 1e-8)."""
    r = len(space)
    vals = sorted(list(x[:r]) + [x[r + s] for s in range(r) if space[s] > 1]
                  + [x[2 * r + s * r + t] for s in range(r) for t in range(r) if s != t])
    return 1 + sum(b - a > 1e-6 for a, b in itertools.pairwise(vals))


def scan(d: Path, ks: list[int]) -> None:
    files = sorted((d / "scan").glob("k*.parquet"))  # what a running scan has written so far
    t = pd.concat([pd.read_parquet(f) for f in files]) if files else pd.read_parquet(d / "atlas.parquet")
    print("| k = d | critical points found | classified | spurious minima | of 1 / 2 / 3 blocks | distinct entries "
          "of the minima | lowest spurious minimum: isotropy, loss (λ_min) | highest |")
    print("|---:|---:|---:|---:|---|---|---|---|")
    for k, g in t.groupby("k"):
        if ks and k not in ks:
            continue
        spur = g[g["kind"].isin(SPURIOUS)].sort_values("loss")
        nb = [int((spur["isotropy"].map(_blocks) == b).sum()) for b in (1, 2, 3)]
        lo = f"{spur['isotropy'].iloc[0]} {spur['loss'].iloc[0]:.5f} ({spur['hess_min'].iloc[0]:.4f})" if len(spur) \
            else "–"
        hi = f"{spur['isotropy'].iloc[-1]} {spur['loss'].iloc[-1]:.5f}" if len(spur) else "–"
        entries = sorted({_distinct_entries(list(r.space), list(r.x)) for r in spur.itertuples()})
        print(f"| {k} | {len(g)} | {int(g['index'].notna().sum())} | {len(spur)} | {' / '.join(map(str, nb))} | "
              f"{', '.join(map(str, entries))} | {lo} | {hi} |")


def scanfamilies(d: Path) -> None:
    f = pd.read_parquet(d / "families.parquet").sort_values(["birth_k", "k_start"])
    counts = f["limit_kind"].value_counts().to_dict()
    print(f"{len(f)} families: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + "\n")
    print("| family | type | first found at k | loss there | birth (saddle → minimum) | death | loss as k → ∞ |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for r in f.itertuples():
        limit = {"zero": "0 (global)", "a/k": f"a/k, a = {r.limit_value:.6f} ± {r.limit_error:.0e}",
                 "constant": f"{r.limit_value:.6f} ± {r.limit_error:.0e}"}.get(r.limit_kind, r.limit_kind)
        print(f"| {r.family} | {r.type} | {r.k_start} | {max(r.loss_start, 0.0):.5f} | {_k(r.birth_k)} | "
              f"{_k(r.death_k)} | {limit} |")
    # the a/k families of Δ(S_{k−p}×S_p): a / a(p = 1) against p, in units of each fit's error
    ak = f[(f["limit_kind"] == "a/k") & f["type"].str.fullmatch(r"Δ\(S_\{k−\d+\}×S_\d+\)")]
    p = ak["type"].str.extract(r"×S_(\d+)\)$")[0].astype(int)
    a1 = ak.loc[p == 1, "limit_value"]
    if len(a1):
        dev = (ak["limit_value"] / a1.iloc[0] - p) / (ak["limit_error"] / a1.iloc[0])
        print(f"\na/k families of Δ(S_{{k−p}}×S_p): p = {', '.join(map(str, sorted(p)))}; a(p = 1) = "
              f"{a1.iloc[0]:.7f}; |a/a(1) − p| at most {dev.abs().max():.2f} of each fit's error")


def scancover(d: Path) -> None:
    """Which local minima of every k scanned (``DIR/scan``) lie on a family of ``DIR/family_curves.parquet``
    (same k, loss to 1e-9): per k, the minima and those on a family; the others listed."""
    t = pd.concat([pd.read_parquet(f) for f in sorted((d / "scan").glob("k*.parquet"))])
    curves = pd.read_parquet(d / "family_curves.parquet")
    print("| k = d | local minima | on a family | not on one |")
    print("|---:|---:|---:|---|")
    for k, g in t[t["index"] == 0].groupby("k"):
        on = curves[curves["k"] == k]["loss"].to_numpy()
        off = [r for r in g.itertuples() if not (abs(on - r.loss) <= 1e-9).any()]
        print(f"| {k} | {len(g)} | {len(g) - len(off)} | "
              f"{'; '.join(f'{r.isotropy} {r.loss:.6f}' for r in off) or '–'} |")


def wide(dirs: list[Path]) -> None:
    header(["d", "n", "k = d + n", "spurious minima at k = d", "their split points: saddles / all (smallest index)",
            "spurious minima found at k = d + n: isotropy, loss (λ_min)"], 4)
    for d in dirs:
        w = pd.read_parquet(d / "wide.parquet")
        t = pd.read_parquet(d / "atlas.parquet")
        dd, n = int(w["d"].iloc[0]), int(w["extra"].iloc[0])
        narrow = t[(t["k"] == dd) & (t["kind"].isin(SPURIOUS))]
        split = w[w["origin"] == "split"]
        found = w[(w["origin"] == "random") & (w["kind"].isin(SPURIOUS))].sort_values("loss")
        cells = "; ".join(f"{r.isotropy} {r.loss:.6f} ({r.hess_min:.6f})" for r in found.itertuples()) or "none"
        print(f"| {dd} | {n} | {dd + n} | {len(narrow)} | {int((split['kind'] == 'saddle').sum())} / {len(split)} "
              f"({int(split['index'].min()) if len(split) else '–'}) | {cells} |")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "minima":
        minima([Path(p) for p in sys.argv[2:]])
    elif len(sys.argv) == 3 and sys.argv[1] == "families":
        families(Path(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        summary(Path(sys.argv[2]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "scan":
        scan(Path(sys.argv[2]), [int(v) for v in sys.argv[3:]])
    elif len(sys.argv) == 3 and sys.argv[1] == "scanfamilies":
        scanfamilies(Path(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "scancover":
        scancover(Path(sys.argv[2]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "wide":
        wide([Path(p) for p in sys.argv[2:]])
    else:
        sys.exit(__doc__)
