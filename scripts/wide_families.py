#!/usr/bin/env python3
"""The spurious minima of k = d + n students in one fixed-point space, followed in d and in n (docs/atlas.md).

    .venv/bin/python scripts/wide_families.py 7 1 1 --d-from 3 --d-to 16 --n-to 3

Finds the spurious local minima of ``Fix(Δ(S_{d−Σtail}×S_tail…) × S_n)`` (arguments: d, n, then the fixed
blocks ``tail``) by :func:`jaxsym.fixedpoints.wide.critical_points`, and follows each with
:func:`jaxsym.fixedpoints.wide.follow` down
to ``--d-from`` and up to ``--d-to`` (n fixed), and in n up to ``--n-to`` (d fixed); prints one Markdown table
per minimum and direction, with the dense Hessian's index at every integer value.
"""

from __future__ import annotations

import argparse

import pandas as pd

from jaxsym.fixedpoints.wide import critical_points, follow
from jaxsym.report.summary import markdown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("d", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("tail", type=int, nargs="+")
    ap.add_argument("--d-from", type=int, default=3)
    ap.add_argument("--d-to", type=int, default=16)
    ap.add_argument("--n-to", type=int, default=3)
    ap.add_argument("--starts", type=int, default=32)
    a = ap.parse_args()
    blocks = (a.d - sum(a.tail), *a.tail)
    cols = ["d", "n", "k", "space", "loss", "index", "hess_min", "zero_eigs", "isotropy"]
    for p in critical_points(blocks, a.n, starts=a.starts):
        if p.index != 0 or p.loss <= 1e-8:
            continue
        print(f"\n### {p.isotropy}, loss {p.loss:.6f} at d = {a.d}, n = {a.n}\n")
        down = follow(blocks, a.n, p.z, d_to=a.d_from).iloc[::-1]
        up = follow(blocks, a.n, p.z, d_to=a.d_to).iloc[1:]
        in_d = pd.concat([down, up], ignore_index=True)
        print(markdown(in_d[cols].assign(space=[str(tuple(s)) for s in in_d["space"]])))
        in_n = follow(blocks, a.n, p.z, n_to=a.n_to)
        print("\n" + markdown(in_n[cols].assign(space=[str(tuple(s)) for s in in_n["space"]])))


if __name__ == "__main__":
    main()
