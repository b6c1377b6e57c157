"""Smoke tests: every benchmark script runs end to end with tiny sizes (so they cannot rot)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script,args", [
    pytest.param("bench.py", ["--ks", "4", "--steps", "10", "--numpy-steps", "3", "--repeats", "1", "--matmul-n",
                              "64", "--table-k", "4", "--table-runs", "8", "--table-steps", "50", "--published-ks",
                              "4", "--published-runs", "8", "--numpy-runs", "2", "--protocols", "fast", "--products",
                              "4"], marks=pytest.mark.slow),  # ~45 s of compilation; run with -m slow
    ("same_science.py", ["--ks", "4", "--runs", "8"]),
    ("bench_cluster.py", ["--n", "3000", "--k", "5", "--chunk", "1000"]),
    ("bench_memory.py", ["--base", "8", "--chunk", "8", "--d", "3", "--steps", "50"]),
    ("bench_blas.py", ["--ks", "4", "--busy", "1", "--repeats", "1"]),
    ("cell_parts.py", ["--k", "4", "--runs", "20"]),
])
def test_benchmark_script_runs(script, args, tmp_path):
    out = tmp_path / "out.json"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args, "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "|" in res.stdout  # printed a table
    data = json.loads(out.read_text())
    assert data
    if script == "bench_cluster.py":
        assert data["found_orbits"] == data["true_orbits"] and data["pure"]


@pytest.mark.slow
def test_fault_injection_finds_no_silent_corruption(tmp_path):
    """The fault-injection suite (scripts/fault_injection.py) with few trials: 0 silent corruptions, 0 crashes,
    0 imports from a results directory, every malformed config answered with its field."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "fault_injection.py"), "--trials", "4", "--kills",
                        "2", "--out", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
