#!/usr/bin/env python3
"""Compare the distinct critical points of a sweep with what Arjevani & Field's symmetry analysis predicts.

For every distinct critical point of a sweep directory (default: the demo, run first if missing) it prints
its isotropy group and Hessian spectrum next to

- the **multiplicities predicted by representation theory** for its isotropy ``Δ(Π S_{p_i})``
  (:func:`jaxsym.symmetry.spectra.predicted_multiplicities`: the isotypic decomposition of ``R^{k×k}`` under the
  isotropy group; eigenvalues of distinct isotypic components may coincide, which merges entries);
- at the global minimum ``W = V = I``, the eigenvalues ``1/4 ± 1/(2π)`` (Arjevani & Field 2020/2021);
- the **principle of least symmetry breaking**: spurious minima have isotropy groups that are large
  subgroups of the target's isotropy ``ΔS_k``, of the form ``Δ(S_{k−p}×S_p)``, ``Δ(S_{k−p−q}×S_p×S_q)``.

Sources:
- Y. Arjevani, M. Field. *On the principle of least symmetry breaking in shallow ReLU models*. 2019/2021,
  arXiv:1912.11939.
- Y. Arjevani, M. Field. *Analytic characterization of the Hessian in shallow ReLU models: a tale of
  symmetry*. NeurIPS 2020, arXiv:2008.01805.

    python scripts/reproduce_arjevani_field.py                 # uses results/demo
    python scripts/reproduce_arjevani_field.py --dir results/safran_shamir
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from jaxsym.symmetry.spectra import predicted_multiplicities

ROOT = Path(__file__).resolve().parents[1]


def compare(minima: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in minima.itertuples(index=False):
        blocks = sorted((int(x) for x in r.neuron_orbits), reverse=True)
        measured = sorted(int(m) for m in r.eig_mults)
        predicted = predicted_multiplicities(blocks) if r.k == r.d else []
        exact = measured == predicted
        # eigenvalues of different isotypic components may coincide: measured must then be a coarsening
        rows.append({"d": r.d, "k": r.k, "orbit": r.orbit, "status": r.status, "loss": r.loss, "count": r.count,
                     "isotropy": r.isotropy, "order": r.isotropy_order, "distinct_measured": len(measured),
                     "distinct_predicted": len(predicted), "multiplicities_match": exact,
                     "coarsening": _is_coarsening(measured, predicted) if predicted else None,
                     "hess_min": r.hess_min, "measured": measured, "predicted": predicted})
    return pd.DataFrame(rows)


def _is_coarsening(measured: list[int], predicted: list[int]) -> bool:
    """Whether ``predicted`` can be partitioned into groups whose sums are ``measured`` (small cases)."""
    if sum(measured) != sum(predicted):
        return False
    pool = Counter(predicted)

    def take(target: int, items: list[int]) -> list[list[int]]:
        if target == 0:
            return [[]]
        out = []
        for v in sorted(set(items), reverse=True):
            if v <= target:
                rest = list(items)
                rest.remove(v)
                for tail in take(target - v, [x for x in rest if x <= v]):
                    out.append([v, *tail])
        return out[:50]

    def solve(ms: list[int], pool: Counter) -> bool:
        if not ms:
            return sum(pool.values()) == 0
        m, rest = ms[0], ms[1:]
        for combo in take(m, list(pool.elements())):
            c = Counter(combo)
            if all(pool[x] >= n for x, n in c.items()) and solve(rest, pool - c):
                return True
        return False

    return solve(sorted(measured, reverse=True), pool)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="results/demo")
    ap.add_argument("--out", default=None, help="JSON file (default DIR/reproduction_arjevani_field.json)")
    a = ap.parse_args()
    out = Path(a.dir)
    if not (out / "minima.parquet").exists():
        from jaxsym import config
        from jaxsym.sweep.driver import run_sweep
        run_sweep(config.load(ROOT / "sweeps" / "demo.toml"), out)
    minima = pd.read_parquet(out / "minima.parquet")
    table = compare(minima)
    print("| k = d | status | loss | runs | isotropy | order | distinct eigenvalues (measured / predicted) "
          "| multiplicities |")
    print("|---:|---|---:|---:|---|---:|---|---|")
    for r in table.itertuples(index=False):
        verdict = "= predicted" if r.multiplicities_match else (
            "predicted, with coincidences" if r.coarsening else "DIFFERENT")
        print(f"| {r.k} | {r.status} | {r.loss:.5g} | {r.count} | {r.isotropy} | {r.order} | "
              f"{r.distinct_measured} / {r.distinct_predicted} | {verdict} |")
    glob = minima[minima["status"] == "global"]
    checks = []
    for r in glob.itertuples(index=False):
        vals = np.asarray(r.eig_values)
        checks.append({"k": int(r.k), "1/4-1/2pi": float(np.min(np.abs(vals - (0.25 - 1 / (2 * np.pi))))),
                       "1/4+1/2pi": float(np.min(np.abs(vals - (0.25 + 1 / (2 * np.pi))))),
                       "largest": float(vals.max())})
    print("\nGlobal minimum W = V = I: distance of the nearest eigenvalue to 1/4 ∓ 1/(2π), and the largest:")
    for c in checks:
        print(f"  k = {c['k']:3d}: {c['1/4-1/2pi']:.1e}, {c['1/4+1/2pi']:.1e}; largest {c['largest']:.4f}")
    spurious = table[table["status"] == "spurious"]
    print(f"\nSpurious minima: {len(spurious)} distinct; isotropy types: "
          f"{dict(Counter(spurious['isotropy']))}; all product-type Δ(...) groups: "
          f"{bool(spurious['isotropy'].str.startswith('Δ').all())}")
    path = Path(a.out) if a.out else out / "reproduction_arjevani_field.json"
    path.write_text(json.dumps({"points": table.to_dict(orient="records"), "global": checks}, indent=2,
                               default=lambda x: x.item() if hasattr(x, "item") else str(x)))


if __name__ == "__main__":
    main()
