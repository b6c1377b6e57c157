"""The Python interface for sweeps: jaxsym.run and jaxsym.load give the tables the CLI writes."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import TINY

import jaxsym
from jaxsym.io.rundir import SweepDirError


def test_run_and_load_give_the_directory_tables(tmp_path):
    res = jaxsym.run(TINY, tmp_path, progress=False)
    assert res.state == "finished" and res.config.name == "tiny"
    pd.testing.assert_frame_equal(res.runs, pd.read_parquet(tmp_path / "runs.parquet"))
    pd.testing.assert_frame_equal(res.minima, pd.read_parquet(tmp_path / "minima.parquet"))
    again = jaxsym.load(tmp_path)
    pd.testing.assert_frame_equal(again.runs, res.runs)
    shares = again.shares()
    assert len(shares) == len(res.config.cells()) * 6  # every status of every cell, zeros included
    per_cell = shares.groupby("cell")
    assert ((per_cell["share"].sum() - 1).abs() < 1e-12).all() and (per_cell["runs"].first() == TINY["runs"]).all()
    counts = res.runs.groupby(["cell", "status"]).size()
    for r in shares.itertuples():
        assert r.count == counts.get((r.cell, r.status), 0) and r.lo <= r.share <= r.hi
    assert "finished" in repr(again) and "<table" in again._repr_html_()


def test_load_refuses_what_is_not_a_sweep(tmp_path):
    with pytest.raises(SweepDirError, match="no sweep"):
        jaxsym.load(tmp_path)


def test_notebook_style_run_load_report_and_chunk_callback(tmp_path):
    seen = []
    res = jaxsym.run({**TINY, "runs": 16}, tmp_path, progress=True, on_chunk=lambda cell, rows: seen.append(
        (cell, len(rows), int(rows["run"].min()))))
    assert sorted(seen) == [("d4-k4", 8, 0), ("d4-k4", 8, 8), ("d5-k5", 8, 0), ("d5-k5", 8, 8)]
    res = jaxsym.load(tmp_path)
    assert res.thresholds["grad_tol"] == res.config.certify.grad_tol
    assert res.manifest["made_by"]["jax"] and res.manifest["fingerprint"] == res.config.fingerprint()
    from jaxsym.io.results import read_metadata

    assert read_metadata(tmp_path / "runs.parquet")["made_by"] == res.manifest["made_by"]  # provenance in tables
    path = res.report(formats=("png", "svg"))
    assert path.exists() and (tmp_path / "figures" / "status.svg").exists()
    assert not (tmp_path / "figures" / "status.pdf").exists()
    with pytest.raises(ValueError, match="formats"):
        res.report(formats=("gif",))


def test_shares_are_per_cell_with_every_grid_axis_and_equal_the_summary(tmp_path):
    """A grid over the learning rate and the target: shares() keeps the four cells of each (d, k) apart (they
    were pooled once), with the counts `jaxsym summary` prints and Wilson intervals around each share."""
    from jaxsym.report.summary import status_table

    raw = {**TINY, "runs": 16, "grid": {"d": [4], "k": "d", "learning_rate": [0.02, 0.1],
                                        "target": ["identity", "orthonormal"]},
           "train": {"steps": 600, "grad_tol": 1e-6}}
    res = jaxsym.run(raw, tmp_path, progress=False)
    shares = res.shares()
    assert shares["cell"].nunique() == 4 and {"learning_rate", "target"} <= set(shares.columns)
    table = status_table(res.runs).set_index("cell")
    for cell, g in shares.groupby("cell"):
        by = g.set_index("status")
        assert by["runs"].iloc[0] == table.loc[cell, "runs"] == 16
        assert 100 * by.loc["global", "share"] == table.loc[cell, "global %"]
        assert 100 * by.loc["spurious", "share"] == table.loc[cell, "spurious %"]
        rows = res.runs[res.runs["cell"] == cell]
        assert by.loc[:, "count"].to_dict() == {s: int((rows["status"] == s).sum()) for s in by.index}
        assert g["learning_rate"].nunique() == 1 and g["learning_rate"].iloc[0] == rows["learning_rate"].iloc[0]
    # the cells really differ: descent with the smaller step has not finished where the larger one has
    wide = shares.pivot(index="cell", columns="status", values="count")
    assert wide["not_converged"].nunique() > 1
