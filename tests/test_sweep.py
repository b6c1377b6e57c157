"""Sweeps end to end: tables, resumption, chunk-size independence, refusing a foreign DIR."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from jaxsym import config
from jaxsym.cli import app
from jaxsym.io import results
from jaxsym.sweep import plan
from jaxsym.sweep.driver import SweepDirError, run_sweep
from jaxsym.sweep.plan import plan_chunks


def _tables(out):
    return pd.read_parquet(out / "runs.parquet"), pd.read_parquet(out / "minima.parquet")


def test_sweep_writes_the_documented_tables(tiny_cfg, tmp_path):
    run_sweep(tiny_cfg, tmp_path, progress=False)
    runs, minima = _tables(tmp_path)
    assert list(runs.columns[:9]) == results.RUNS_COLUMNS
    assert set(results.MINIMA_COLUMNS) <= set(minima.columns)
    assert len(runs) == 2 * tiny_cfg.runs
    for _, g in runs.groupby(["d", "k"]):
        assert sorted(g["run"]) == list(range(tiny_cfg.runs))
    crit = runs[runs["status"].isin(["global", "spurious", "saddle", "degenerate"])]
    assert (crit["grad_norm"] <= 1e-10).all() and (crit["orbit"] >= 0).all()
    assert (runs.loc[~runs.index.isin(crit.index), "orbit"] == -1).all()
    # counts in minima.parquet agree with the orbit column of runs.parquet
    for row in minima.itertuples():
        n = ((runs["d"] == row.d) & (runs["k"] == row.k) & (runs["orbit"] == row.orbit)).sum()
        assert n == row.count
        assert len(row.W) == row.k * row.d
    glob = minima[minima["status"] == "global"]
    assert set(glob["isotropy"]) <= {"ΔS4", "ΔS5"}
    meta = results.read_metadata(tmp_path / "runs.parquet")
    assert meta["thresholds"]["grad_tol"] == tiny_cfg.certify.grad_tol


def test_one_spectrum_per_distinct_point_and_old_chunks_still_merge(tiny_cfg, tmp_path, monkeypatch):
    """A distinct point's Hessian is eigendecomposed once, in its chunk (the merge reads the chunk's
    eigenvalues); chunks written without them (older jaxsym) merge to the same minima table."""
    import jaxsym.sweep.closed_form as cf
    from jaxsym.sweep.plan import plan_cell

    calls = []
    real = cf.hessian_eigenvalues
    monkeypatch.setattr(cf, "hessian_eigenvalues", lambda *a, **k: calls.append(1) or real(*a, **k))
    run_sweep(tiny_cfg, tmp_path / "a", progress=False)
    reps = pd.concat([pd.read_parquet(f) for f in (tmp_path / "a" / "chunks").rglob("*.reps.parquet")])
    assert len(calls) == len(reps) > 0  # one per chunk-local orbit, none at the merge
    # a cell merged from chunks without eigenvalues (older jaxsym): computed at the merge, the same minima
    for cell in tiny_cfg.cells():
        files = sorted((tmp_path / "a" / "chunks" / cell.label).glob("*.reps.parquet"))
        old = []
        for i, f in enumerate(files):
            stripped = tmp_path / f"old-{cell.label}-{i}.parquet"
            pd.read_parquet(f).drop(columns="eigs").to_parquet(stripped)
            old.append((f, stripped))
        calls.clear()
        plan = plan_cell(tiny_cfg, cell)
        assert cf.merge(tiny_cfg, plan, old).minima == cf.merge(tiny_cfg, plan, [(f, f) for f in files]).minima
        assert len(calls) > 0


def test_results_do_not_depend_on_chunk_size(tiny_cfg, tmp_path):
    run_sweep(tiny_cfg, tmp_path / "a", progress=False)
    run_sweep(dataclasses.replace(tiny_cfg, chunk_size=5), tmp_path / "b", progress=False)
    for x, y in zip(_tables(tmp_path / "a"), _tables(tmp_path / "b")):
        pd.testing.assert_frame_equal(x, y)


def test_results_do_not_depend_on_workers(tiny_cfg, tmp_path):
    """Chunks run in threads: one, or three at once (both cells' chunks interleaved), give the same tables."""
    run_sweep(dataclasses.replace(tiny_cfg, workers=1), tmp_path / "a", progress=False)
    run_sweep(dataclasses.replace(tiny_cfg, workers=3), tmp_path / "b", progress=False)
    for x, y in zip(_tables(tmp_path / "a"), _tables(tmp_path / "b")):
        pd.testing.assert_frame_equal(x, y)


def test_host_blas_runs_on_one_thread_during_a_sweep_and_is_restored_after(tiny_cfg, tmp_path):
    """OpenBLAS's threads spin on busy cores beside XLA and the other workers (host_blas_one_thread): a sweep's
    chunks see one BLAS thread, and the caller's setting comes back afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    seen: list[list[int]] = []
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        run_sweep(dataclasses.replace(tiny_cfg, workers=2), tmp_path / "a", progress=False,
                  on_chunk=lambda c, a, b: seen.append(blas_threads()))
        assert blas_threads() == before
    assert before and seen and all(t == [1] * len(before) for t in seen)


class BoomError(Exception):
    pass


@pytest.mark.parametrize(("workers", "error"), [(1, BoomError), (2, BoomError), (2, SystemExit)])
def test_interrupted_sweep_resumes_without_loss_or_repeats(tiny_cfg, workers, error, tmp_path):
    """An exception in the main thread (here from ``on_chunk``; SystemExit is how submitit ends a preempted job)
    stops the chunks in flight; the resumed sweep runs exactly the chunks that were not written, and the tables
    equal an uninterrupted sweep's."""
    from jaxsym.io.rundir import RunDir

    cfg = dataclasses.replace(tiny_cfg, workers=workers)
    run_sweep(cfg, tmp_path / "full", progress=False)
    seen = []

    def stop_after_four(cell, start, stop):
        seen.append((cell.label, start, stop))
        if len(seen) == 4:
            raise error

    with pytest.raises(error):
        run_sweep(cfg, tmp_path / "cut", progress=False, on_chunk=stop_after_four)
    rd, fp = RunDir(tmp_path / "cut"), cfg.fingerprint()
    written = {(c.label, a, b) for c in cfg.cells() for a, b in rd.done_ranges(c.label, fp)}
    assert set(seen) <= written
    redone = []
    run_sweep(cfg, tmp_path / "cut", progress=False, on_chunk=lambda c, a, b: redone.append((c.label, a, b)))
    assert not written & set(redone)  # nothing written is repeated
    assert len(written) + len(redone) == 6
    for x, y in zip(_tables(tmp_path / "full"), _tables(tmp_path / "cut")):
        pd.testing.assert_frame_equal(x, y)


def test_corrupt_chunk_is_redone(tiny_cfg, tmp_path):
    run_sweep(tiny_cfg, tmp_path, progress=False)
    before = _tables(tmp_path)
    victim = sorted((tmp_path / "chunks").glob("*/*.runs.parquet"))[1]
    victim.write_bytes(victim.read_bytes()[:50])  # truncated file
    run_sweep(tiny_cfg, tmp_path, progress=False)
    for x, y in zip(before, _tables(tmp_path)):
        pd.testing.assert_frame_equal(x, y)


def test_a_dir_from_another_config_is_refused(tiny_cfg, tmp_path):
    run_sweep(tiny_cfg, tmp_path, progress=False)
    before = (tmp_path / "runs.parquet").read_bytes()
    other = dataclasses.replace(tiny_cfg, seed=1)
    with pytest.raises(SweepDirError, match=r"different sweep config.*differing: seed 0 → 1"):
        run_sweep(other, tmp_path, progress=False)
    other = dataclasses.replace(tiny_cfg, train=dataclasses.replace(tiny_cfg.train, learning_rate=0.2), chunk_size=4)
    with pytest.raises(SweepDirError, match=r"differing: train\.learning_rate 0\.1 → 0\.2$|differing: train\."
                                            r"learning_rate 0\.1 → 0\.2\."):
        run_sweep(other, tmp_path, progress=False)
    assert (tmp_path / "runs.parquet").read_bytes() == before


def test_plan_chunks_covers_exactly_what_is_missing():
    chunks = list(plan_chunks(20, [(0, 8), (16, 20)], 8))
    assert chunks == [(8, 16)]
    chunks = list(plan_chunks(23, [(5, 10)], 4))
    covered = sorted(i for a, b in chunks for i in range(a, b))
    assert covered == [i for i in range(23) if not 5 <= i < 10]
    assert all(b - a <= 4 for a, b in chunks)


@given(st.integers(1, 300), st.lists(st.tuples(st.integers(0, 300), st.integers(1, 40)), max_size=6),
       st.integers(1, 50), st.integers(1, 4))
@settings(max_examples=200, deadline=None)
def test_chunk_shares_partition_the_plan_and_are_counted_without_listing(total, done, size, processes):
    """The shares of ``processes`` processes are disjoint and together the whole plan; ``n_chunks`` counts each
    share (as the driver does, without producing the chunks)."""
    done = [(a, min(a + w, total)) for a, w in done if a < total]
    whole = list(plan_chunks(total, done, size))
    assert plan.n_chunks(total, done, size) == len(whole)
    parts = [list(plan_chunks(total, done, size, (i, processes))) for i in range(processes)]
    assert sorted(c for p in parts for c in p) == whole
    assert [plan.n_chunks(total, done, size, (i, processes)) for i in range(processes)] == [len(p) for p in parts]


def test_a_plan_of_two_to_the_32_runs_starts_at_once():
    first = next(iter(plan_chunks(2**32, [], 65536)))
    assert first == (0, 65536) and plan.n_chunks(2**32, [], 65536) == 2**16


def test_cli_sweep_and_errors(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text('name = "cli"\nseed = 0\nruns = 8\nchunk_size = 8\n[grid]\nd = [3]\nk = "d"\n'
                   '[train]\nsteps = 1500\n')
    runner = CliRunner()
    res = runner.invoke(app, ["sweep", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "global %" in res.output and "ΔS3" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nseed = 0\nruns = 8\n[grid]\nd = [3]\nk = [4]\n')
    res = runner.invoke(app, ["sweep", str(bad), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "m <= d" in res.output
    assert np.isfinite(pd.read_parquet(tmp_path / "o" / "runs.parquet")["loss"]).all()


def test_demo_variant_smoke(tmp_path):
    cfg = config.load(config.Path(__file__).resolve().parents[1] / "sweeps" / "tiny.toml")
    run_sweep(dataclasses.replace(cfg, runs=16), tmp_path, progress=False)
    assert len(pd.read_parquet(tmp_path / "runs.parquet")) == 32


@pytest.mark.parametrize("name", sorted(p.name for p in (config.Path(__file__).resolve().parents[1] / "sweeps")
                                        .glob("*.toml")))
def test_every_shipped_sweep_has_a_working_smoke_variant(name, tmp_path):
    cfg = config.load(config.Path(__file__).resolve().parents[1] / "sweeps" / name).smoke()
    run_sweep(cfg, tmp_path, progress=False)
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    assert len(runs) == cfg.runs * len(cfg.cells())


def test_sweep_with_random_targets(tmp_path):
    cfg = config.from_dict({"name": "t", "seed": 0, "runs": 8, "chunk_size": 8,
                            "grid": {"d": [4], "k": "d", "target": ["orthonormal", "gaussian"]},
                            "train": {"steps": 2000}})
    run_sweep(cfg, tmp_path, progress=False)
    runs, minima = _tables(tmp_path)
    assert set(runs["target"]) == {"orthonormal", "gaussian"} and len(runs) == 16
    glob = runs[runs["status"] == "global"]
    assert (glob["loss"] < 1e-8).all()
    # an orthonormal target of a rotated identity: the global minimum is W = V up to row order, trivial
    # column symmetry, so its isotropy is 1 (no (π, ρ) fixes both W and V generically)
    g = minima[(minima["status"] == "global") & (minima["target"] == "orthonormal")]
    assert len(g) <= 1 and (g["isotropy"] == "1").all()


def test_final_weights_only_for_representatives_unless_asked(tiny_cfg, tmp_path):
    run_sweep(tiny_cfg, tmp_path / "a", progress=False)
    assert "W" not in pd.read_parquet(tmp_path / "a" / "runs.parquet").columns
    run_sweep(dataclasses.replace(tiny_cfg, save_weights=True), tmp_path / "b", progress=False)
    runs = pd.read_parquet(tmp_path / "b" / "runs.parquet")
    assert runs["W"].map(len).tolist() == (runs["k"] * runs["d"]).tolist()
    minima = pd.read_parquet(tmp_path / "b" / "minima.parquet")
    for row in minima.itertuples():  # the representative's W is the run's final (polished) W
        w = runs[(runs["cell"] == row.cell) & (runs["run"] == row.rep_run)]["W"].iloc[0]
        np.testing.assert_allclose(np.asarray(w), np.asarray(row.W), atol=0)
