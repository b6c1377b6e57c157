"""A results directory you can trust: verified chunks, one writer, no links, no code from data, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY
from typer.testing import CliRunner

from jaxsym import config
from jaxsym.cli import app
from jaxsym.io import checkpoint
from jaxsym.io.rundir import RunDir, SweepDirError
from jaxsym.sweep.driver import run_sweep


def _tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(out / "runs.parquet"), pd.read_parquet(out / "minima.parquet")


def _same(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    run_sweep(config.from_dict(TINY), out, progress=False)
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _chunks(d: Path) -> list[Path]:
    return sorted((d / "chunks").rglob("*.runs.parquet"))


def test_every_damaged_chunk_is_quarantined_and_redone(finished: Path, tmp_path: Path):
    cfg = config.from_dict(TINY)
    ref = _tables(finished)
    rng = np.random.default_rng(0)
    d = _copy(finished, tmp_path / "d")
    a, b, c, e = _chunks(d)[:4]
    data = bytearray(a.read_bytes())  # a bit flip
    data[int(rng.integers(len(data)))] ^= 4
    a.write_bytes(bytes(data))
    rd = RunDir(d)
    for suffix in (".runs.parquet", ".reps.parquet", ".chunk.json"):  # a chunk copied over its neighbour
        shutil.copy(b.with_name(b.name.replace(".runs.parquet", suffix)),
                    c.with_name(c.name.replace(".runs.parquet", suffix)))
    rd.chunk_identity(e).unlink()  # a chunk without identity is not adopted on its name
    (d / "runs.parquet").unlink()
    run_sweep(cfg, d, progress=False)
    _same(_tables(d), ref)
    quarantined = {p.name.split(".")[0] for p in (d / "quarantine").rglob("*.parquet.*")}
    assert {a.name.split(".")[0], c.name.split(".")[0], e.name.split(".")[0]} <= quarantined


def test_a_chunk_of_another_sweep_is_never_adopted(finished: Path, tmp_path: Path):
    other_cfg = config.from_dict({**TINY, "seed": 1})
    other = tmp_path / "other"
    run_sweep(other_cfg, other, progress=False)
    d = _copy(finished, tmp_path / "d")
    src = _chunks(other)[0]
    for p in src.parent.glob(src.name.split(".")[0] + ".*"):
        shutil.copy(p, d / "chunks" / src.parent.name / p.name)
    run_sweep(config.from_dict(TINY), d, progress=False)
    _same(_tables(d), _tables(finished))
    # deleting sweep.json and running another config redoes every run instead of adopting the chunks
    (d / "sweep.json").unlink()
    run_sweep(other_cfg, d, progress=False)
    _same(_tables(d), _tables(other))


def test_stray_files_are_ignored_and_leftovers_removed(finished: Path, tmp_path: Path):
    d = _copy(finished, tmp_path / "d")
    cell = _chunks(d)[0].parent
    shutil.copy(_chunks(d)[0], cell / "notes.runs.parquet")
    shutil.copy(_chunks(d)[0], cell / "x (copy).runs.parquet")
    (cell / "0000000100-0000000108.runs.parquet").mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # a pid that has exited
    (d / f".runs.parquet.{dead}.tmp").write_text("left by a killed merge")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        # a file being written by another live process (a sibling of a multi-process sweep) is not removed
        (d / f".sweep.json.{live.pid}.tmp").write_text("being written")
        run_sweep(config.from_dict(TINY), d, progress=False)
        live.kill()
    _same(_tables(d), _tables(finished))
    assert not (d / f".runs.parquet.{dead}.tmp").exists()
    assert (d / f".sweep.json.{live.pid}.tmp").exists()
    assert (cell / "notes.runs.parquet").exists()  # not ours: left alone


def test_one_writer_per_directory(finished: Path, tmp_path: Path):
    d = _copy(finished, tmp_path / "d")
    with RunDir(d).lock("sweep"):
        with pytest.raises(SweepDirError, match=rf"being written by sweep: pid {os.getpid()} on host"):
            run_sweep(config.from_dict(TINY), d, progress=False)
    # another process holding the lock: refused with its pid; the lock goes when the process dies
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from jaxsym.io.rundir import RunDir\n"
                               f"with RunDir({str(d)!r}).lock('sweep'):\n print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SweepDirError, match=f"pid {holder.pid}"):
            run_sweep(config.from_dict(TINY), d, progress=False)
    finally:
        holder.kill()
        holder.wait()
    run_sweep(config.from_dict(TINY), d, progress=False)  # a dead holder leaves no stale lock


def test_links_inside_the_directory_are_refused(finished: Path, tmp_path: Path):
    d = _copy(finished, tmp_path / "d")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (d / "sweep.log").unlink()
    (d / "sweep.log").symlink_to(victim)
    with pytest.raises(SweepDirError, match="symbolic link"):
        run_sweep(config.from_dict(TINY), d, progress=False)
    assert victim.read_text() == "precious"


def test_names_are_names_not_paths():
    for bad in ("/abs/path", "../../x", "a/b", "a\x00b", ".hidden", ""):
        with pytest.raises(config.ConfigError, match="name must be a name"):
            config.from_dict({**TINY, "name": bad})


def test_inflight_checkpoints_carry_identity_and_checksums(tmp_path: Path):
    path = tmp_path / "inflight"
    ident = {"fingerprint": "f", "cell": "d4-k4", "start": 0, "stop": 8}
    checkpoint.claim(path, ident)
    state = {"W": np.arange(12.0).reshape(3, 4), "step": np.int32(7)}
    assert checkpoint.save(path, 7, state)
    step, got = checkpoint.restore(path, state)
    assert step == 7 and np.array_equal(got["W"], state["W"])
    # corrupt the stored array: the checksum refuses it (the chunk starts over)
    (path / "sha256-7.txt").write_text(checkpoint.digest({"W": state["W"] + 1, "step": state["step"]}))
    assert checkpoint.restore(path, state) is None
    # another sweep's (or chunk's) in-flight directory is removed, not resumed
    assert checkpoint.save(path, 8, state)
    checkpoint.claim(path, {**ident, "fingerprint": "g"})
    assert checkpoint.restore(path, state) is None


@pytest.mark.parametrize("named", [dict(distribution="user", sampler="evilmod:sample"), dict(student="evilmod:sample"),
                                   dict(teacher="evilmod:sample")])
def test_report_never_imports_a_sampler_named_by_the_directory(named: dict, finished: Path, tmp_path: Path):
    """Nor a flax student or teacher: code named by a directory is never run by reading it."""
    d = _copy(finished, tmp_path / "d")
    manifest = json.loads((d / "sweep.json").read_text())
    manifest["config"]["sampled"] = dict(config.SampledConfig(**named).__dict__)
    manifest["fingerprint"] = config.from_manifest(manifest["config"]).fingerprint()  # a consistent forgery
    (d / "sweep.json").write_text(json.dumps(manifest))
    marker = tmp_path / "imported"
    (d / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef sample(*a):\n    pass\n")
    (d / "runs.parquet").unlink()
    cwd = os.getcwd()
    sys.path.insert(0, "")
    try:
        os.chdir(d)
        r = CliRunner().invoke(app, ["report", "."])
    finally:
        os.chdir(cwd)
        sys.path.remove("")
    assert r.exit_code == 0, r.output
    assert not marker.exists() and "evilmod" not in sys.modules
    assert "never imports" in (d / "report.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["report", "no/such/dir"], "not a directory"),
    (["summary", "no/such/dir"], "does not exist"),
    (["family", "no/such/dir", "--k", "4"], "does not exist"),
    (["sweep", "tests"], "is a directory"),
])
def test_cli_errors_are_messages_with_exit_2(args: list[str], message: str):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output


def test_a_directory_made_by_jaxsym_0_1_resumes(finished: Path, tmp_path: Path):
    """0.1 wrote the same fingerprint and sweep.json without provenance, and chunks without identity files:
    the directory resumes (its chunks, unverifiable, are redone) and gives the same tables."""
    cfg = config.from_dict(TINY)
    d = _copy(finished, tmp_path / "d")
    manifest = json.loads((d / "sweep.json").read_text())
    del manifest["made_by"]
    (d / "sweep.json").write_text(json.dumps(manifest))
    for p in (d / "chunks").rglob("*.chunk.json"):
        p.unlink()
    (d / "runs.parquet").unlink()
    run_sweep(cfg, d, progress=False)
    _same(_tables(d), _tables(finished))


def test_plan_is_a_dry_run_that_counts_verified_chunks(finished: Path, tmp_path: Path):
    toml = tmp_path / "tiny.toml"
    toml.write_text('name = "tiny"\nseed = 0\nruns = 24\nchunk_size = 8\n[grid]\nd = [4, 5]\nk = "d"\n'
                    '[train]\nsteps = 2500\nlearning_rate = 0.1\ngrad_tol = 1e-6\n')
    r = CliRunner().invoke(app, ["plan", str(toml), "--out", str(finished)])
    assert r.exit_code == 0, r.output
    assert "holds this sweep" in r.output and r.output.count("24") >= 2  # both cells done
    r = CliRunner().invoke(app, ["plan", str(toml), "--out", str(tmp_path / "new"), "--set", "runs=40"])
    assert r.exit_code == 0 and "new or another sweep" in r.output and not (tmp_path / "new").exists(), r.output


def test_shards_then_merge_equal_one_unsharded_run(finished: Path, tmp_path: Path):
    toml = tmp_path / "tiny.toml"
    toml.write_text('name = "tiny"\nseed = 0\nruns = 24\nchunk_size = 8\n[grid]\nd = [4, 5]\nk = "d"\n'
                    '[train]\nsteps = 2500\nlearning_rate = 0.1\ngrad_tol = 1e-6\n')
    d = tmp_path / "sharded"
    r = CliRunner().invoke(app, ["sweep", str(toml), "--out", str(d), "--shard", "1/2", "--no-progress"])
    assert r.exit_code == 0 and "jaxsym merge" in r.output, r.output
    assert not (d / "runs.parquet").exists()  # a shard does not merge
    r = CliRunner().invoke(app, ["merge", str(d)])
    assert r.exit_code == 2 and "missing runs" in r.output and "d4-k4: runs 0..7, 16..23" in r.output, r.output
    r = CliRunner().invoke(app, ["sweep", str(toml), "--out", str(d), "--no-progress"],
                           env={"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"})
    assert r.exit_code == 0 and "shard 0/2" in r.output, r.output
    r = CliRunner().invoke(app, ["merge", str(d)])
    assert r.exit_code == 0, r.output
    _same(_tables(d), _tables(finished))
    for bad in ("2/2", "x", "1/0"):
        r = CliRunner().invoke(app, ["sweep", str(toml), "--out", str(d), "--shard", bad])
        assert r.exit_code == 2 and "i/N" in r.output


def test_the_directory_itself_may_be_a_link(finished: Path, tmp_path: Path):
    real = _copy(finished, tmp_path / "real")
    (tmp_path / "link").symlink_to(real)
    run_sweep(config.from_dict(TINY), tmp_path / "link", progress=False)
    _same(_tables(real), _tables(finished))


def test_plan_caps_the_chunk_size_and_estimates_time_from_measured_rates(tmp_path: Path):
    """A chunk never holds more than `runs`; the time estimate appears once a sweep of the same settings has run
    on this machine (a learning rate no other test uses makes the settings new)."""
    lr = 0.1 + float(np.random.default_rng().integers(1, 10**6)) * 1e-12
    toml = tmp_path / "t.toml"
    toml.write_text(f'name = "t"\nseed = 0\nruns = 16\nchunk_size = 256\n[grid]\nd = [4]\nk = "d"\n'
                    f'[train]\nsteps = 1500\nlearning_rate = {lr!r}\n')
    r = CliRunner().invoke(app, ["plan", str(toml), "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if "d4-k4" in line)
    assert row.split("│")[2].strip() == "16"  # chunk size: the 16 runs, not 256
    assert "no time estimate" in r.output
    r = CliRunner().invoke(app, ["sweep", str(toml), "--out", str(tmp_path / "a"), "--no-progress",
                                 "--chunk-size", "4"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["plan", str(toml), "--out", str(tmp_path / "b"), "--set", "runs=1000000"])
    assert r.exit_code == 0 and "left at the rates measured on this machine" in r.output, r.output
