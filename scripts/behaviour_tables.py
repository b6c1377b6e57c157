"""Record and compare the tables of the demo and of every shipped sweep's smoke variant.

A refactor must keep behaviour: record before, record after, compare.

    .venv/bin/python scripts/behaviour_tables.py record /tmp/before [--demo]
    .venv/bin/python scripts/behaviour_tables.py record /tmp/after [--demo]
    .venv/bin/python scripts/behaviour_tables.py compare /tmp/before /tmp/after

``record`` runs ``SweepConfig.smoke()`` of every ``sweeps/*.toml`` (and ``sweeps/demo.toml`` in full with
``--demo``) into ``DIR/<name>/``. ``compare`` checks that ``runs.parquet`` and ``minima.parquet`` of each agree
in every column, bit for bit (NaN equal to NaN), and prints one line per table.
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
    from jaxsym.parallel import use_compilation_cache
    from jaxsym.sweep import run_sweep

    use_compilation_cache()  # as the CLI does: stored programs (jaxsym.programs) are then exercised too

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
    bad = 0
    for sub in sorted(p for p in a.iterdir() if p.is_dir()):
        for table in ("runs.parquet", "minima.parquet"):
            x, y = pd.read_parquet(sub / table), pd.read_parquet(b / sub.name / table)
            diff = [c for c in x.columns if c not in y.columns or not _same(x[c], y[c])]
            extra = [c for c in y.columns if c not in x.columns]
            ok = len(x) == len(y) and list(x.columns) == list(y.columns) and not diff
            bad += not ok
            print(f"{'same' if ok else 'DIFFERENT'}  {sub.name}/{table}: {len(x)} rows"
                  + (f"; differing {diff}" if diff else "") + (f"; new columns {extra}" if extra else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "record":
        record(Path(sys.argv[2]), "--demo" in sys.argv)
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
