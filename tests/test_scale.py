"""Sweeps at scale: SIGKILL and resume, many devices, many processes, in-flight checkpoints."""

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from jaxsym import config
from jaxsym.io import checkpoint
from jaxsym.sweep.closed_form import build as build_programs
from jaxsym.sweep.closed_form import run_chunk
from jaxsym.sweep.plan import plan_cell

SWEEP = """name = "scale"
seed = 1
runs = 48
chunk_size = 8
segment_steps = 300
checkpoint_interval_s = {interval}
[grid]
d = [4, 5]
k = "d"
[train]
steps = 2500
"""


def _write_cfg(tmp_path: Path, interval: float = 60.0) -> Path:
    path = tmp_path / f"sweep-{interval}.toml"
    path.write_text(SWEEP.format(interval=interval))
    return path


def _cmd(cfg: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "jaxsym.cli", "sweep", str(cfg), "--out", str(out), "--no-progress", *extra]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env.update(extra)
    return env


def _run(cfg: Path, out: Path, *extra: str, **env: str) -> None:
    subprocess.run(_cmd(cfg, out, *extra), check=True, env=_env(**env), capture_output=True, timeout=600)


def _assert_same_tables(a: Path, b: Path) -> None:
    for name in ("runs.parquet", "minima.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("baseline")
    cfg = _write_cfg(tmp)
    _run(cfg, tmp / "out")
    return tmp / "out"


def _n_chunks(out: Path) -> int:
    return len(list((out / "chunks").glob("*/*.runs.parquet"))) if (out / "chunks").exists() else 0


def _kill_when(cfg: Path, out: Path, ready) -> None:
    """Start a sweep, SIGKILL it as soon as ``ready(out)`` holds (or when it ends by itself)."""
    proc = subprocess.Popen(_cmd(cfg, out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and not ready(out) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_sigkill_at_several_points_then_resume_is_bit_identical(baseline, tmp_path):
    cfg = _write_cfg(tmp_path)
    out = tmp_path / "out"
    written = []
    for target in (1, 4, 9):  # kill after 1, 4 and 9 finished chunks (of 12)
        _kill_when(cfg, out, lambda o, t=target: _n_chunks(o) >= t)
        written.append(_n_chunks(out))
        assert not (out / "runs.parquet").exists() or _n_chunks(out) == 12
    assert written == sorted(written) and written[0] >= 1
    _run(cfg, out)
    _assert_same_tables(baseline, out)
    runs = pd.read_parquet(out / "runs.parquet")
    assert not runs.duplicated(["d", "k", "run"]).any() and len(runs) == 2 * 48


def test_sigkill_inside_a_chunk_resumes_from_the_inflight_checkpoint(baseline, tmp_path):
    cfg = _write_cfg(tmp_path, interval=0.001)  # checkpoint after every segment
    out = tmp_path / "out"

    def inflight_saved(o: Path) -> bool:
        # a saved step counts once its checksum is written (a step without one is not resumed)
        return any((o / "inflight").glob("*/*/sha256-*.txt")) if (o / "inflight").exists() else False

    _kill_when(cfg, out, inflight_saved)
    assert (out / "inflight").exists()
    _run(cfg, out)
    assert "resumed in-flight chunk" in (out / "sweep.log").read_text()
    _assert_same_tables(baseline, out)
    assert not any((out / "inflight").glob("*/*"))  # cleared once chunks are written


def test_tables_identical_on_four_devices(baseline, tmp_path):
    cfg = _write_cfg(tmp_path)
    _run(cfg, tmp_path / "out", XLA_FLAGS="--xla_force_host_platform_device_count=4")
    assert "4 local devices" in (tmp_path / "out" / "sweep.log").read_text()
    _assert_same_tables(baseline, tmp_path / "out")


def test_tables_identical_with_two_processes(baseline, tmp_path):
    cfg = _write_cfg(tmp_path)
    out = tmp_path / "out"
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    args = ["--coordinator", f"localhost:{port}", "--num-processes", "2"]
    procs = [subprocess.Popen(_cmd(cfg, out, *args, "--process-id", str(i)), env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in (1, 0)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-2000:]
    log = (out / "sweep.log").read_text()
    assert "process 0/2" in log and "process 1/2" in log
    _assert_same_tables(baseline, out)


def test_truncated_inflight_checkpoint_falls_back(tmp_path, caplog):
    """A corrupt newest checkpoint step is skipped for the previous good one; with none usable the
    chunk starts over; either way the chunk's results equal an uninterrupted run's."""
    cfg = config.load(_write_cfg(tmp_path, interval=0.001))
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, protocol="full"))
    cell = cfg.cells()[0]
    prog = build_programs(cfg, plan_cell(cfg, cell))
    clean_rows, *_ = run_chunk(cfg, prog, 0, 8)

    inflight = tmp_path / "inflight"
    eng = prog.engine
    state = eng.init(jax.numpy.arange(8, dtype=jax.numpy.uint32))
    state = eng.advance(state, jax.numpy.int32(300))
    checkpoint.save(inflight, 300, state)
    state = eng.advance(state, jax.numpy.int32(600))
    checkpoint.save(inflight, 600, state)
    newest = inflight / "600"
    files = [p for p in newest.rglob("*") if p.is_file() and p.stat().st_size > 0]
    for p in files:  # truncate every file of the newest step
        p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 3)])
    got = checkpoint.restore(inflight, state)
    assert got is not None and got[0] == 300
    rows, *_ = run_chunk(cfg, prog, 0, 8, inflight)
    pd.testing.assert_frame_equal(rows, clean_rows)

    assert "not saved" not in caplog.text  # the corrupt step was removed, so the resumed chunk could save it
    checkpoint.clear(inflight)
    checkpoint.save(inflight, 300, state)
    for p in (inflight / "300").rglob("*"):
        if p.is_file():
            p.write_bytes(b"garbage")
    assert checkpoint.restore(inflight, state) is None
    rows, *_ = run_chunk(cfg, prog, 0, 8, inflight)
    pd.testing.assert_frame_equal(rows, clean_rows)


def test_memory_budget_sets_chunk_sizes():
    from jaxsym.config import ConfigError
    from jaxsym.sweep.plan import certify_bytes_per_run, chunk_size_for, train_bytes_per_run, validate, workers_for
    cfg = config.from_dict({"name": "m", "seed": 0, "runs": 10**7, "memory_budget_mb": 64,
                            "grid": {"d": [10, 50], "k": "d"}})
    small, large = cfg.cells()
    assert chunk_size_for(cfg, small) > chunk_size_for(cfg, large) >= 16
    n = chunk_size_for(cfg, small)
    # from the training state alone (the certificate runs one run at a time), the budget shared by the workers
    share = 64 * 2**20 // workers_for(cfg)
    assert n * train_bytes_per_run(10, 10, 10) <= share < 2 * n * train_bytes_per_run(10, 10, 10)
    one = dataclasses.replace(cfg, workers=1)
    assert chunk_size_for(one, small) * train_bytes_per_run(10, 10, 10) <= 64 * 2**20
    assert np.log2(n) == int(np.log2(n))
    few = config.from_dict({"name": "m", "seed": 0, "runs": 1000, "grid": {"d": [10], "k": "d"}})
    assert chunk_size_for(few, few.cells()[0]) == 1000  # never larger than the runs it holds
    assert certify_bytes_per_run(50, 50, 50) > 64 * 2**20
    with pytest.raises(ConfigError, match="cannot fit the float64 certificate"):
        validate(cfg)


def test_float64_numbers_do_not_depend_on_the_chunk_size(tmp_path):
    """A run's float64 numbers (loss, grad_norm, hess_min, hess_max) are its orbit's, whose representative is the
    orbit's first run whatever the chunking, so they are the same bit for bit for chunks of 3 and of 8; so are
    minima.parquet and every other column but polish_shift (the distance to the certified point, which may be the
    run's own polish or its chunk's representative carried to it: equal to the polish's precision)."""
    from jaxsym.sweep import driver as sweep
    cfg = config.load(_write_cfg(tmp_path))
    sweep.run_sweep(dataclasses.replace(cfg, chunk_size=3), tmp_path / "a", progress=False)
    sweep.run_sweep(dataclasses.replace(cfg, chunk_size=8), tmp_path / "b", progress=False)
    a, b = (pd.read_parquet(tmp_path / x / "runs.parquet") for x in "ab")
    pd.testing.assert_frame_equal(a.drop(columns="polish_shift"), b.drop(columns="polish_shift"), check_exact=True)
    np.testing.assert_allclose(a["polish_shift"], b["polish_shift"], rtol=0, atol=1e-10)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / "minima.parquet"),
                                  pd.read_parquet(tmp_path / "b" / "minima.parquet"))


SAMPLED = """name = "scale-sampled"
seed = 2
runs = 16
chunk_size = 8
segment_steps = 200
checkpoint_interval_s = 0.001
[grid]
d = [4]
k = "d"
[train]
learning_rate = 0.1
steps = 1500
[sampled]
distribution = "cube"
train_output = true
eval_samples = 2048
hess_samples = 4096
"""


@pytest.mark.slow  # ~40 s; run with -m slow
def test_sampled_sweep_resumes_mid_chunk_and_ignores_the_device_count(tmp_path):
    """The sampled engine's state goes through the same in-flight checkpoints and sharding: a sweep killed
    inside a chunk, and one on four devices, give the tables of an uninterrupted single-device sweep."""
    cfg = tmp_path / "sampled.toml"
    cfg.write_text(SAMPLED)
    _run(cfg, tmp_path / "base")

    def inflight_saved(o: Path) -> bool:
        # a saved step counts once its checksum is written (a step without one is not resumed)
        return any((o / "inflight").glob("*/*/sha256-*.txt")) if (o / "inflight").exists() else False

    _kill_when(cfg, tmp_path / "killed", inflight_saved)
    _run(cfg, tmp_path / "killed")
    assert "resumed in-flight chunk" in (tmp_path / "killed" / "sweep.log").read_text()
    _assert_same_tables(tmp_path / "base", tmp_path / "killed")
    _run(cfg, tmp_path / "four", XLA_FLAGS="--xla_force_host_platform_device_count=4")
    _assert_same_tables(tmp_path / "base", tmp_path / "four")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_sigterm_stops_in_order_then_resume_is_bit_identical(baseline, tmp_path):
    """SIGTERM (what SLURM sends before preempting a job) stops like Ctrl-C: exit 143, one line saying what is
    saved; the in-flight chunks save their state at their next segment, and a rerun gives the same tables."""
    cfg = _write_cfg(tmp_path)
    out = tmp_path / "out"
    lines = []
    for target in (1, 5):
        proc = subprocess.Popen(_cmd(cfg, out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 300
        while proc.poll() is None and _n_chunks(out) < target and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
        if _n_chunks(out) == 12 and proc.returncode == 0:
            break  # it finished first
        assert proc.returncode == 143, err
        assert "Traceback" not in err and "stopped by SIGTERM" in err and "same command" in err, err
        lines.append(err)
    assert lines
    _run(cfg, out)
    _assert_same_tables(baseline, out)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from /proc")
def test_a_sweep_of_any_size_starts_in_bounded_memory(tmp_path):
    """`runs` up to 2^32 per cell: plan and sweep start at once and in constant memory (chunks are planned
    lazily); more is refused in one line (run indices are 32-bit)."""
    cfg = tmp_path / "huge.toml"
    cfg.write_text(f'name = "huge"\nseed = 0\nruns = {2**32}\nchunk_size = 64\n[grid]\nd = [3]\nk = "d"\n'
                   f'[train]\nsteps = 200\n')  # 2²⁶ chunks of 64: planned lazily, never listed
    t0 = time.monotonic()
    plan = subprocess.run([sys.executable, "-m", "jaxsym.cli", "plan", str(cfg), "--out", str(tmp_path / "out")],
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0 and "4,294,967,296" in plan.stderr + plan.stdout, plan.stderr
    assert time.monotonic() - t0 < 60
    proc = subprocess.Popen(_cmd(cfg, tmp_path / "out"), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    peak = 0.0
    try:
        t0 = time.monotonic()
        while (time.monotonic() - t0 < 20 or not _n_chunks(tmp_path / "out")) and time.monotonic() - t0 < 120 \
                and proc.poll() is None:
            peak = max(peak, _rss_mb(proc.pid))
            time.sleep(0.25)
        assert proc.poll() is None  # still sweeping
        assert _n_chunks(tmp_path / "out") >= 1  # and finishing chunks
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
    assert peak < 1024, f"resident memory {peak:.0f} MB"
    print(f"peak resident memory {peak:.0f} MB")
    assert proc.returncode == 143 and "stopped by SIGTERM" in err, err
    cfg.write_text(cfg.read_text().replace(f"runs = {2**32}", "runs = 1000000000000"))
    for cmd in ("plan", "sweep"):
        r = subprocess.run([sys.executable, "-m", "jaxsym.cli", cmd, str(cfg)], env=_env(), capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and "runs must be at most 4,294,967,296" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
