"""The Python interface for sweeps: jaxsym.run and jaxsym.load give the tables the CLI writes."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import TINY

import jaxsym
from jaxsym.rundir import SweepDirError


def test_run_and_load_give_the_directory_tables(tmp_path):
    res = jaxsym.run(TINY, tmp_path, progress=False)
    assert res.state == "finished" and res.config.name == "tiny"
    pd.testing.assert_frame_equal(res.runs, pd.read_parquet(tmp_path / "runs.parquet"))
    pd.testing.assert_frame_equal(res.minima, pd.read_parquet(tmp_path / "minima.parquet"))
    again = jaxsym.load(tmp_path)
    pd.testing.assert_frame_equal(again.runs, res.runs)
    shares = again.shares()
    assert len(shares) == len(res.config.cells())
    assert ((shares.sum(axis=1) - 1).abs() < 1e-12).all()
    counts = res.runs.groupby(["d", "k"])["status"].value_counts().unstack(fill_value=0)
    assert (shares.to_numpy() * TINY["runs"]).round().astype(int).tolist() == counts.to_numpy().tolist()
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
    from jaxsym.results import read_metadata

    assert read_metadata(tmp_path / "runs.parquet")["made_by"] == res.manifest["made_by"]  # provenance in tables
    path = res.report(formats=("png", "svg"))
    assert path.exists() and (tmp_path / "figures" / "status.svg").exists()
    assert not (tmp_path / "figures" / "status.pdf").exists()
    with pytest.raises(ValueError, match="formats"):
        res.report(formats=("gif",))
