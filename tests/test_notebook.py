"""The Colab notebook runs top to bottom on a CPU-only machine with a tiny config."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def test_colab_notebook_executes_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSYM_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("JAXSYM_NOTEBOOK_OUT", str(tmp_path / "out"))
    nb = nbformat.read(ROOT / "notebooks" / "colab.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / "out" / "report.md").exists()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert os.environ["JAXSYM_NOTEBOOK_TINY"] == "1"


def test_install_cell_builds_requirements_pip_accepts(tmp_path, monkeypatch):
    """The install cell's helpers: PEP 508 requirements (no '#egg=' fragments), the extra from the runtime."""
    from packaging.requirements import Requirement

    nb = nbformat.read(ROOT / "notebooks" / "colab.ipynb", as_version=4)
    ns: dict = {}
    exec(nb.cells[1].source.split("SOURCE = ")[0], ns)  # the helpers, not the install itself
    url = "git+https://example.org/jaxsym.git@v0.1"
    for extra in ("", "cuda12", "tpu"):
        req = Requirement(ns["pip_spec"](url, extra))
        assert req.name == "jaxsym" and req.url == url and req.extras == ({extra} if extra else set())
    assert ns["pip_spec"](str(ROOT), "cuda12") == f"{ROOT}[cuda12]"
    wheel = tmp_path / "jaxsym-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    req = Requirement(ns["pip_spec"](str(wheel), "tpu"))
    assert req.url == wheel.resolve().as_uri() and req.extras == {"tpu"}
    monkeypatch.setattr(ns["shutil"], "which", lambda name: None)
    monkeypatch.delenv("COLAB_TPU_ADDR", raising=False)
    monkeypatch.delenv("TPU_ACCELERATOR_TYPE", raising=False)
    assert ns["accelerator_extra"]() in ("", "tpu")  # "" unless this machine has /dev/accel0
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    assert ns["accelerator_extra"]() == "tpu"
    monkeypatch.setattr(ns["shutil"], "which", lambda name: "/usr/bin/nvidia-smi" if name == "nvidia-smi" else None)
    assert ns["accelerator_extra"]() == "cuda12"


@pytest.mark.slow
def test_install_cell_installs_a_built_wheel_in_a_fresh_environment(tmp_path):
    """Build jaxsym's wheel, then run the notebook's install cell with JAXSYM_SOURCE = that wheel in a new
    virtual environment (dependencies from the package index): it must end importing jaxsym."""
    import shutil
    import subprocess
    import sys
    import venv

    src = tmp_path / "src"  # build from a copy: setuptools writes build/ next to the sources
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "results", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
                   check=True, timeout=600)
    (wheel,) = wheels.glob("jaxsym-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    nb = nbformat.read(ROOT / "notebooks" / "colab.ipynb", as_version=4)
    r = subprocess.run([str(python), "-c", nb.cells[1].source], cwd=tmp_path, capture_output=True, text=True,
                       timeout=1500, env={**os.environ, "JAXSYM_SOURCE": str(wheel), "PYTHONPATH": ""})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert r.stdout.strip().endswith(f"jaxsym {wheel.name.split('-')[1]}")
    r = subprocess.run([str(python), "-c", "from jaxsym.config import load; print(load('tiny').name)"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": ""})
    assert r.stdout.strip() == "tiny", r.stderr[-2000:]  # the sweep files ship with the wheel
