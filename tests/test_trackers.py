"""The tracker callbacks log what the chunks' rows say, in any chunk order, to a fake W&B run and writer."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import TINY

import jaxsym
from jaxsym.report.trackers import chunk_scalars, tensorboard_callback, wandb_callback


class FakeRun:
    def __init__(self):
        self.logged = []

    def log(self, data, step=None):
        self.logged.append(dict(data))


class FakeWriter:
    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, scalar_value, global_step=None):
        self.scalars.append((tag, float(scalar_value), int(global_step)))


def _rows(statuses, losses):
    return pd.DataFrame({"status": statuses, "loss": losses})


def test_chunk_scalars_are_the_shares_and_losses_of_all_runs_so_far_in_any_order():
    a = _rows(["global", "spurious", "not_converged"], [0.0, 0.05, 0.3])
    b = _rows(["spurious", "spurious"], [0.02, 0.05])
    for first, second in ((a, b), (b, a)):
        scalars = chunk_scalars()
        scalars("d6-k6", first)
        n, got = scalars("d6-k6", second)
        both = pd.concat([a, b])
        assert n == 5
        for s in ("global", "spurious", "not_converged", "saddle"):
            assert got[f"share/{s}"] == (both["status"] == s).mean()
        crit = both[both["status"] != "not_converged"]["loss"]
        assert got["loss/lowest"] == crit.min() and got["loss/median"] == np.median(crit)
        assert scalars("d7-k7", _rows(["diverged"], [np.nan])) == (1, {**{f"share/{s}": 0.0 for s in
                                                                     ("global", "spurious", "saddle", "degenerate",
                                                                      "not_converged")}, "share/diverged": 1.0})


def test_trackers_log_every_chunk_of_a_sweep(tmp_path):
    run, writer = FakeRun(), FakeWriter()
    w, t = wandb_callback(run), tensorboard_callback(writer)

    def both(cell, rows):
        w(cell, rows)
        t(cell, rows)

    res = jaxsym.run({**TINY, "runs": 16}, tmp_path, progress=False, on_chunk=both)
    cells = sorted(res.runs["cell"].unique())
    assert len(run.logged) == len(cells) * 2  # 16 runs per cell in chunks of 8
    for cell in cells:
        last = [e for e in run.logged if f"{cell}/runs" in e][-1]
        assert last[f"{cell}/runs"] == 16
        share = (res.runs[res.runs["cell"] == cell]["status"] == "global").mean()
        assert last[f"{cell}/share/global"] == share
        steps = [s for tag, _, s in writer.scalars if tag == f"{cell}/share/global"]
        assert sorted(steps) == [8, 16]
