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
