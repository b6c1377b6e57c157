#!/usr/bin/env python3
"""Set-up and entry points for a fresh machine with only Python 3.11+.

    python3 dev.py demo     # create .venv, install jaxsym, run the demo sweep, print the summary
    python3 dev.py test     # create .venv, install jaxsym[dev], run the test suite (slow tests skipped)

Other commands: ``python3 dev.py sweep CONFIG [...]`` (any jaxsym CLI command), ``python3 dev.py lint``.
The virtual environment is (re)installed only when pyproject.toml changed since the last install.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (a clear message on an old Python)
        sys.exit(f"jaxsym needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".jaxsym-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != want:
        print("installing jaxsym and its dependencies into .venv (first time: a minute or two) ...", flush=True)
        subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"], check=True)
        stamp.write_text(want)


def main(argv: list[str]) -> int:
    cmd, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if cmd in ("help", "-h", "--help"):
        print(__doc__)
        return 0
    ensure_env()
    os.chdir(ROOT)
    if cmd == "demo":
        return subprocess.call([str(BIN / "jaxsym"), "sweep", "sweeps/demo.toml", "--out", "results/demo", *rest])
    if cmd == "test":
        return subprocess.call([str(PY), "-m", "pytest", *rest])
    if cmd == "lint":
        return subprocess.call([str(PY), "-m", "ruff", "check", "jaxsym", "tests", "scripts", *rest])
    return subprocess.call([str(BIN / "jaxsym"), cmd, *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
