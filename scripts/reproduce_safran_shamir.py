#!/usr/bin/env python3
"""Reproduce the gradient-descent experiment of Safran & Shamir (2018) for k = d from 6 to 20.

Setting (``sweeps/safran_shamir.toml``): target ``V = I``, student ``k = d`` neurons, plain gradient descent
with step size ``5/k`` from ``W_ij ~ N(0, 1/k)`` (the "Xavier" start of the published code), then jaxsym's
float64 polish and certificate. Prints per ``k`` the share of runs ending in a certified spurious minimum,
the lowest spurious loss and the isotropy types found; writes ``reproduction_safran_shamir.json`` and
``safran_shamir.png`` (into ``--out``).

Sources:
- I. Safran, O. Shamir. *Spurious Local Minima are Common in Two-Layer ReLU Neural Networks*. ICML 2018
  (arXiv:1712.08968): spurious minima for 6 ≤ k ≤ 20, found by gradient descent with a probability "quite
  high, and increasing with the network size".
- I. Safran, G. Yehudai, O. Shamir. *The Effects of Mild Over-parameterization on the Optimization Landscape
  of Shallow ReLU Neural Networks*. COLT 2021. Its public code (github.com/ItaySafran/Overparameterization,
  README) states the experiment (500 runs per k = d from 6 to 100, step 5/k, Xavier initialisation, GD to
  ‖∇F‖ ≤ 1e-12, equivalence up to permutations of neurons and coordinates) and gives the k = 7 spurious
  minimum explicitly; it is reproduced below (:data:`PUBLISHED_K7`), neurons being *columns* there.

    python scripts/reproduce_safran_shamir.py --runs 500          # k = d = 6 … 20
    python scripts/reproduce_safran_shamir.py --runs 50 --kmax 8  # a quick look
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from jaxsym import config
from jaxsym.sweep.driver import run_sweep
from jaxsym.symmetry.group import find_element

ROOT = Path(__file__).resolve().parents[1]

# k = 7 spurious minimum from the README of Safran, Yehudai & Shamir's code: compact values and block sizes.
PUBLISHED_K7 = {"vals": [[-0.6327039049, 0.2616910758, 0.0], [0.1859910463, 0.9969227988, -0.0350801559]],
                "p": [1, 6]}


def reconstruct(vals: list[list[float]], p: list[int]) -> np.ndarray:
    """The published compact form → k × k matrix (their convention: neurons are columns)."""
    vals_a = np.asarray(vals)
    edges = np.concatenate([[0], np.cumsum(p)])
    W = np.zeros((edges[-1], edges[-1]))
    for i in range(len(p)):
        for j in range(len(p)):
            a, b = slice(edges[i], edges[i + 1]), slice(edges[j], edges[j + 1])
            if i == j:
                n = p[i]
                W[a, b] = (vals_a[i, i] - vals_a[i, -1]) * np.eye(n) + vals_a[i, -1] * np.ones((n, n))
            else:
                W[a, b] = vals_a[i, j]
    return W


def compare_published_k7(minima: pd.DataFrame) -> dict:
    """Is the published k = 7 minimum (transposed to rows = neurons) one of ours, modulo the group?"""
    import jax

    from jaxsym.certify.exact import polish
    from jaxsym.landscape import model
    ours = minima[(minima["k"] == 7) & (minima["status"] == "spurious")]
    theirs = reconstruct(**PUBLISHED_K7).T
    with jax.enable_x64(True):
        V = np.eye(7)
        Wp, _ = polish(jax.numpy.asarray(theirs), jax.numpy.asarray(V), iters=40, tol=1e-13)
        Wp = np.asarray(Wp)
        loss = float(model.loss(jax.numpy.asarray(Wp), jax.numpy.asarray(V)))
    out = {"published_max_entry_change_after_polish": float(np.max(np.abs(Wp - theirs))), "published_loss": loss}
    for _, r in ours.iterrows():
        W = np.asarray(r["W"]).reshape(7, 7)
        g = find_element(W, Wp, tol=1e-6)
        if g is not None:
            out.update(match_orbit=int(r["orbit"]), our_loss=float(r["loss"]),
                       max_entry_difference=float(np.max(np.abs(g(W) - Wp))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--kmax", type=int, default=20)
    ap.add_argument("--out", default="results/safran_shamir")
    a = ap.parse_args()
    cfg = config.load(ROOT / "sweeps" / "safran_shamir.toml")
    cfg = dataclasses.replace(cfg, runs=a.runs, d=tuple(d for d in cfg.d if d <= a.kmax))
    out = Path(a.out)
    run_sweep(cfg, out)
    runs = pd.read_parquet(out / "runs.parquet")
    minima = pd.read_parquet(out / "minima.parquet")
    rows = []
    for k, g in runs.groupby("k"):
        m = minima[(minima["k"] == k) & (minima["status"] == "spurious")]
        types = m.groupby("isotropy")["count"].sum().sort_values(ascending=False)
        rows.append({"k": int(k), "runs": len(g), "spurious_%": 100 * (g["status"] == "spurious").mean(),
                     "global_%": 100 * (g["status"] == "global").mean(),
                     "other_%": 100 * (~g["status"].isin(["global", "spurious"])).mean(),
                     "distinct_spurious": len(m),
                     "lowest_spurious_loss": float(m["loss"].min()) if len(m) else float("nan"),
                     "types": ", ".join(f"{t} ({c})" for t, c in types.items())})
    table = pd.DataFrame(rows)
    print("| k = d | runs | spurious % | global % | other % | distinct spurious | lowest spurious loss "
          "| isotropy (runs) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in table.itertuples(index=False):
        print(f"| {r.k} | {r.runs} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.1f} | {r.distinct_spurious} | "
              f"{r.lowest_spurious_loss:.5g} | {r.types} |")
    k7 = compare_published_k7(minima) if 7 in set(runs["k"]) else {}
    if k7:
        print(f"\npublished k = 7 spurious minimum (Safran, Yehudai & Shamir code README): {k7}")
    fig, ax1 = plt.subplots(figsize=(6.4, 3.8))
    ax1.plot(table["k"], table["spurious_%"], "o-", color="tab:red", label="spurious %")
    ax1.set_xlabel("k = d")
    ax1.set_ylabel("runs ending in a spurious minimum (%)")
    ax2 = ax1.twinx()
    ax2.plot(table["k"], table["lowest_spurious_loss"], "s--", color="tab:blue", label="lowest spurious loss")
    ax2.set_ylabel("lowest spurious loss")
    fig.legend(loc="center right", bbox_to_anchor=(0.86, 0.5), fontsize=8)
    ax1.set_title(f"Gradient descent, step 5/k, {a.runs} runs per k")
    fig.tight_layout()
    fig.savefig(out / "safran_shamir.png", dpi=110)
    (out / "reproduction_safran_shamir.json").write_text(json.dumps({"table": rows, "published_k7": k7}, indent=2))


if __name__ == "__main__":
    main()
