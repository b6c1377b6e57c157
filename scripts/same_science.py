"""Same science: per-run statuses of jaxsym's default protocol against the published float64 protocol.

Runs, from the same initial points (same seed and run indices), cells k = d in ``--ks`` with ``--runs`` runs:

- the default protocol: ``sweeps/safran_shamir.toml``'s settings (float32 descent with step 5/k, compaction,
  hand-off to the float64 certificate);
- the published protocol: ``sweeps/safran_shamir_float64.toml`` (float64 descent with step 5/k to
  ‖∇F‖ ≤ 1e-12, no hand-off);

and prints, per cell, the share of runs with the same status, the disagreements by (default → published) pair,
and the spurious shares of both. Writes ``same_science.json``.

    .venv/bin/python scripts/same_science.py                      # k = 6…12, 1000 runs (≈ 10 min on 2 cores)
    .venv/bin/python scripts/same_science.py --ks 6 7 --runs 100  # a quick look
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from jaxsym import config
from jaxsym.sweep.driver import run_sweep

ROOT = Path(__file__).resolve().parents[1]


def run(name: str, ks: list[int], runs: int, out: Path) -> tuple[pd.DataFrame, float]:
    cfg = config.load(ROOT / "sweeps" / f"{name}.toml")
    cfg = dataclasses.replace(cfg, d=tuple(ks), runs=runs)
    t = time.perf_counter()
    run_sweep(cfg, out / name, progress=False)
    return pd.read_parquet(out / name / "runs.parquet"), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", type=int, nargs="+", default=list(range(6, 13)))
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--out", default="same_science.json")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fast, t_fast = run("safran_shamir", a.ks, a.runs, Path(tmp))
        pub, t_pub = run("safran_shamir_float64", a.ks, a.runs, Path(tmp))
    m = fast.merge(pub, on=["k", "run"], suffixes=("_default", "_published"))
    print(f"default protocol {t_fast:.0f} s, published protocol {t_pub:.0f} s (same machine, one run)\n")
    print("| k = d | runs | same status | disagreements (default → published) | spurious, default | "
          "spurious, published | published runs with ‖∇F‖ ≤ 1e-12 after descent |")
    print("|---:|---:|---:|---|---:|---:|---:|")
    rows = []
    for k, g in m.groupby("k"):
        same = (g["status_default"] == g["status_published"]).mean()
        diff = g[g["status_default"] != g["status_published"]]
        pairs = diff.groupby(["status_default", "status_published"]).size()
        text = ", ".join(f"{n} {a}→{b}" for (a, b), n in pairs.items()) or "none"
        row = {"k": int(k), "runs": len(g), "same": float(same), "disagreements": text,
               "spurious_default": float((g["status_default"] == "spurious").mean()),
               "spurious_published": float((g["status_published"] == "spurious").mean()),
               "published_reached_1e-12": float((g["train_grad_norm_published"] <= 1e-12).mean())}
        rows.append(row)
        print(f"| {k} | {len(g)} | {100 * same:.1f}% | {text} | {100 * row['spurious_default']:.1f}% | "
              f"{100 * row['spurious_published']:.1f}% | {100 * row['published_reached_1e-12']:.1f}% |")
    total = (m["status_default"] == m["status_published"]).mean()
    print(f"\nall cells: {100 * total:.2f}% of {len(m)} runs have the same status")
    with open(a.out, "w") as f:
        json.dump({"cells": rows, "same_overall": float(total), "seconds": {"default": t_fast, "published": t_pub}},
                  f, indent=2)


if __name__ == "__main__":
    main()
