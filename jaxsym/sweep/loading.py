"""Reading a sweep's results directory back: the config and the tables, merged first when chunks are newer.

:func:`load_tables` serves :func:`jaxsym.load` and ``jaxsym report``: it works on finished, running,
interrupted and empty sweeps, and never runs code named by the directory (a sweep with a user sampler is merged
only by ``jaxsym sweep`` with its config file).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from jaxsym import config
from jaxsym.io.rundir import RunDir, SweepDirError
from jaxsym.sweep.driver import finalize, read_sweep


def load_tables(out: Path) -> tuple[config.SweepConfig, pd.DataFrame, pd.DataFrame, str]:
    """The sweep of ``out`` with its tables, merging finished chunks first when the tables are missing or older.

    Never runs code named by the directory: a sweep with a user sampler, student or teacher is merged only by
    ``jaxsym sweep`` with its config file (the merge runs them), so here its tables are used as they are."""
    rd = RunDir(out)
    manifest, cfg = read_sweep(rd)
    rd.check_no_links([c.label for c in cfg.cells()])
    chunks = rd.all_chunk_files()
    if not chunks:
        return cfg, pd.DataFrame(), pd.DataFrame(), "no finished chunk yet"
    newest = max(p.stat().st_mtime for p in chunks)
    stale = not rd.runs_table.exists() or rd.runs_table.stat().st_mtime < newest
    note = ""
    if stale and manifest.get("fingerprint") != cfg.fingerprint():  # never move another version's chunks
        note = (f"; tables not merged: {out} was fingerprinted by another jaxsym version "
                f"({manifest.get('fingerprint')}, now {cfg.fingerprint()}); run `jaxsym sweep` with its config to "
                f"merge")
    elif stale and cfg.sampled is not None and cfg.sampled.user_code:
        note = (f"; tables not merged: this sweep's merge runs user code ({', '.join(cfg.sampled.user_code)}), which "
                f"`jaxsym report` never imports — run `jaxsym sweep CONFIG --out {out}` to merge")
    elif stale:
        try:
            finalize(cfg, out)
        except SweepDirError as e:  # a sweep is writing DIR: report the tables of its last merge
            note = f"; tables as of the last merge ({e})"
    if not rd.runs_table.exists():
        return cfg, pd.DataFrame(), pd.DataFrame(), "not merged yet" + note
    runs = pd.read_parquet(rd.runs_table)
    minima = pd.read_parquet(rd.minima_table)
    done = len(runs)
    total = cfg.runs * len(cfg.cells())
    state = "finished" if done >= total else f"partial: {done} of {total} runs finished"
    return cfg, runs, minima, state + note
