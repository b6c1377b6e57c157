"""Record and compare the tables of the demo and of every shipped sweep's smoke variant.

A refactor must keep behaviour: record before, record after, compare.

    .venv/bin/python scripts/behaviour_tables.py record /tmp/before [--demo]
    .venv/bin/python scripts/behaviour_tables.py record /tmp/after [--demo]
    .venv/bin/python scripts/behaviour_tables.py compare /tmp/before /tmp/after

``record`` runs ``SweepConfig.smoke()`` of every ``sweeps/*.toml`` (and ``sweeps/demo.toml`` in full with
``--demo``) into ``DIR/<name>/``. ``compare`` checks that every Parquet table under the first directory (the
sweeps' ``runs.parquet`` and ``minima.parquet``; also an atlas's tables, e.g. of ``jaxsym atlas --k 10 --k-max
100`` and ``--k 3 --k-to 20`` recorded beside them) agrees with the one under the second in every column, bit
for bit (NaN equal to NaN), and prints one line per table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def record(out: Path, demo: bool) -> None:
    from jaxsym import config
    from jaxsym.numerics.parallel import use_compilation_cache
    from jaxsym.sweep.driver import run_sweep

    use_compilation_cache()  # as the CLI does: stored programs (jaxsym.numerics.programs) are then exercised too

    jobs = [(p.stem + "-smoke", config.load(p).smoke()) for p in sorted((ROOT / "sweeps").glob("*.toml"))]
    if demo:
        jobs.append(("demo", config.load(ROOT / "sweeps" / "demo.toml")))
    for name, cfg in jobs:
        t0 = time.perf_counter()
        run_sweep(cfg, out / name, progress=False)
        print(f"{name}: {time.perf_counter() - t0:.1f}s", flush=True)


def _norm(x: object) -> object:
    """Nested lists of Python scalars (arrays and lists alike), NaN as a string, for exact comparison."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_norm(e) for e in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and np.isnan(x):
        return "nan"
    return x


def _same(a: pd.Series, b: pd.Series) -> bool:
    return all(_norm(x) == _norm(y) for x, y in zip(a, b))


def compare(a: Path, b: Path) -> int:
    """Every Parquet table under ``a`` against the one at the same place under ``b`` (sweeps' runs and minima, an
    atlas's atlas/families/scan tables): the same columns and rows, bit for bit."""
    bad = 0
    for x_path in sorted(a.rglob("*.parquet")):
        rel = x_path.relative_to(a)
        if "chunks" in rel.parts:
            continue
        y_path = b / rel
        if not y_path.exists():
            print(f"MISSING    {rel}")
            bad += 1
            continue
        x, y = pd.read_parquet(x_path), pd.read_parquet(y_path)
        diff = [c for c in x.columns if c not in y.columns or not _same(x[c], y[c])]
        extra = [c for c in y.columns if c not in x.columns]
        ok = len(x) == len(y) and list(x.columns) == list(y.columns) and not diff
        bad += not ok
        print(f"{'same' if ok else 'DIFFERENT'}  {rel}: {len(x)} rows"
              + (f"; differing {diff}" if diff else "") + (f"; new columns {extra}" if extra else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "record":
        record(Path(sys.argv[2]), "--demo" in sys.argv)
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
