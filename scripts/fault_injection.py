#!/usr/bin/env python3
"""Fault injection on results directories: every damage either leads to the same final tables as an undamaged
sweep or to a clear refusal; never to silently different tables, a crashing resume, or imported code.

    .venv/bin/python scripts/fault_injection.py [--trials N] [--kills N] [--seed S] [--out reliability.json]

Scenarios (each trial starts from a copy of a finished sweep unless said otherwise, damages it, reruns the sweep
on it — a resume — and compares ``runs.parquet`` and ``minima.parquet`` with the undamaged sweep's, bit for
bit):

- ``bit flip``: one random bit of one random chunk file (runs, reps or identity);
- ``truncation``: a chunk file cut at a random length;
- ``swapped chunk``: a chunk's three files copied over its neighbour's;
- ``short chunk``: a runs table rewritten with 10 of its rows (checksum updated: a careful forger);
- ``stray files``: ``notes.runs.parquet``, ``x (copy).runs.parquet`` and a directory named like a chunk;
- ``foreign chunk``: a chunk of a sweep with another seed copied in (with its identity);
- ``SIGKILL``: a sweep (with in-flight checkpoints) killed at a random moment, then resumed;
- ``in-flight bit flip``: a sweep killed after an in-flight checkpoint, one random bit of a checkpoint file
  flipped, then resumed;
- ``two writers``: a second sweep with another config started on a DIR whose sweep is running (it must be
  refused, and the first one's tables must be unchanged);
- ``crafted directory``: a DIR whose sweep.json names a sampler module placed inside DIR, with no merged
  tables; ``jaxsym report`` run from inside DIR must not import it;
- ``malformed config``: configs with one bad field each; every answer must be a ConfigError naming the field.

Outcomes: ``same`` (identical final tables), ``refused`` (a clear error, nothing changed), ``DIFFERENT``
(silent corruption), ``CRASH`` (an exception other than a clear refusal), ``IMPORTED`` (code from DIR ran).
Prints one table row per scenario and writes the counts as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxsym import config  # noqa: E402
from jaxsym.io.rundir import RunDir, SweepDirError, file_sha256  # noqa: E402
from jaxsym.sweep.driver import run_sweep  # noqa: E402

BASE = {"name": "faults", "seed": 0, "runs": 48, "chunk_size": 8, "grid": {"d": [4, 5], "k": "d"},
        "train": {"learning_rate": 0.3, "steps": 3000}}


def cfg(**over: object) -> config.SweepConfig:
    raw = json.loads(json.dumps(BASE))
    raw.update(over)
    return config.from_dict(raw)


def tables(d: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(d / "runs.parquet"), pd.read_parquet(d / "minima.parquet")


def _norm(x: object) -> object:
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_norm(e) for e in x]
    if isinstance(x, np.generic):
        x = x.item()
    return "nan" if isinstance(x, float) and np.isnan(x) else x


def same_tables(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame]) -> bool:
    for x, y in zip(a, b):
        if list(x.columns) != list(y.columns) or len(x) != len(y):
            return False
        if any(_norm(u) != _norm(v) for c in x.columns for u, v in zip(x[c], y[c])):
            return False
    return True


def resume_outcome(d: Path, c: config.SweepConfig, ref: tuple[pd.DataFrame, pd.DataFrame]) -> str:
    try:
        run_sweep(c, d, progress=False)
    except SweepDirError:
        return "refused"
    except Exception as e:
        print(f"    crash: {type(e).__name__}: {e}", flush=True)
        return "CRASH"
    return "same" if same_tables(tables(d), ref) else "DIFFERENT"


def chunk_files(d: Path) -> list[Path]:
    return sorted(p for p in (d / "chunks").rglob("*") if p.is_file() and not p.name.startswith("."))


def flip_bit(path: Path, rng: np.random.Generator) -> None:
    data = bytearray(path.read_bytes())
    i = int(rng.integers(len(data)))
    data[i] ^= 1 << int(rng.integers(8))
    path.write_bytes(bytes(data))


def sweep_cli(c_path: Path, out: Path, **kw: object) -> subprocess.Popen:
    env = {**os.environ, "JAXSYM_COMPILATION_CACHE": os.environ.get("JAXSYM_COMPILATION_CACHE", "off")}
    return subprocess.Popen([sys.executable, "-m", "jaxsym.cli", "sweep", str(c_path), "--out", str(out),
                             "--no-progress"], env=env, cwd=kw.get("cwd", ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def write_toml(raw: dict, path: Path) -> Path:
    lines = [f"{k} = {json.dumps(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for sec, body in raw.items():
        if isinstance(body, dict):
            lines.append(f"[{sec}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in body.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


MALFORMED = [  # (field named in the message, the bad config's changes)
    ("name", {"name": "../../x"}), ("name", {"name": "/abs/path"}), ("name", {"name": "a\u0000b"}),
    ("name", {"name": ""}), ("seed", {"seed": -1}), ("seed", {"seed": "0"}), ("runs", {"runs": 0}),
    ("runs", {"runs": 1.5}), ("chunk_size", {"chunk_size": -8}), ("memory_budget_mb", {"memory_budget_mb": 0}),
    ("grid.d", {"grid": {"d": [4, 4], "k": "d"}}),
    ("grid.d", {"grid": {"d": {"start": 1, "stop": 10**8}, "k": "d"}}),
    ("grid.d", {"grid": {"d": {"start": 1, "stop": 5, "step": 0}, "k": "d"}}),
    ("grid.d", {"grid": {"d": [], "k": "d"}}),
    ("grid.d", {"grid": {"d": ["4"], "k": "d"}}), ("grid.k", {"grid": {"d": [4], "k": "x"}}),
    ("grid.target", {"grid": {"d": [4], "k": "d", "target": "nope"}}),
    ("train.learning_rate", {"train": {"learning_rate": float("inf")}}),
    ("train.learning_rate", {"train": {"learning_rate": float("nan")}}),
    ("train.learning_rate", {"train": {"learning_rate": -1.0}}),
    ("train.init_scale", {"train": {"init_scale": float("inf")}}), ("train.steps", {"train": {"steps": 3_000_000_000}}),
    ("train.steps", {"train": {"steps": 0}}), ("train.momentum", {"train": {"momentum": "x"}}),
    ("train.optimizer", {"train": {"optimizer": "lbfgs"}}), ("train.dtype", {"train": {"dtype": "float16"}}),
    ("train.activation", {"train": {"activation": "swish"}}), ("train", {"train": {"foo": 1}}),
    ("certify.grad_tol", {"certify": {"grad_tol": 0}}), ("foo", {"foo": 1}),
]


def malformed(rows: list[tuple[str, str]]) -> Counter:
    out: Counter = Counter()
    for field, change in MALFORMED:
        raw = json.loads(json.dumps(BASE))
        for key, value in change.items():
            if isinstance(value, dict) and isinstance(raw.get(key), dict) and key != "grid":
                raw[key] = {**raw[key], **value}
            else:
                raw[key] = value
        try:
            config.from_dict(raw)
            out["ACCEPTED"] += 1
            print(f"    accepted: {change}", flush=True)
        except config.ConfigError as e:
            ok = field.split(".")[-1] in str(e)
            out["refused" if ok else "UNCLEAR"] += 1
            if not ok:
                print(f"    unclear: {change} -> {e}", flush=True)
        except Exception as e:
            out["CRASH"] += 1
            print(f"    crash: {change} -> {type(e).__name__}: {e}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=40, help="trials per random scenario")
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="reliability.json")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    work = Path(tempfile.mkdtemp(prefix="jaxsym-faults-"))
    c = cfg()
    ref_dir = work / "ref"
    run_sweep(c, ref_dir, progress=False)
    ref = tables(ref_dir)
    results: dict[str, Counter] = {}

    def trial(name: str, damage) -> None:
        d = work / f"t{len(results)}-{sum(results.get(name, Counter()).values())}"
        shutil.copytree(ref_dir, d)
        damage(d)
        results.setdefault(name, Counter())[resume_outcome(d, c, ref)] += 1
        shutil.rmtree(d, ignore_errors=True)

    for _ in range(a.trials):
        trial("bit flip in a chunk file", lambda d: flip_bit(rng.choice(chunk_files(d)), rng))
    for _ in range(a.trials):
        def truncate(d: Path) -> None:
            p = rng.choice(chunk_files(d))
            data = p.read_bytes()
            p.write_bytes(data[:int(rng.integers(len(data)))])
        trial("truncated chunk file", truncate)

    def swap(d: Path) -> None:
        files = sorted((d / "chunks").rglob("*.runs.parquet"))
        src, dst = files[0], files[1]
        for suffix in (".runs.parquet", ".reps.parquet", ".chunk.json"):
            shutil.copy(src.with_name(src.name.replace(".runs.parquet", suffix)),
                        dst.with_name(dst.name.replace(".runs.parquet", suffix)))
    trial("chunk copied over its neighbour", swap)

    def short(d: Path) -> None:
        p = sorted((d / "chunks").rglob("*.runs.parquet"))[2]
        pd.read_parquet(p).head(10).to_parquet(p, index=False)
        ident_path = RunDir(d).chunk_identity(p)
        ident = json.loads(ident_path.read_text())
        ident["runs_sha256"] = file_sha256(p)
        ident_path.write_text(json.dumps(ident))
    trial("chunk rewritten with 10 rows (checksum forged)", short)

    def stray(d: Path) -> None:
        cell = next((d / "chunks").iterdir())
        src = next(cell.glob("*.runs.parquet"))
        shutil.copy(src, cell / "notes.runs.parquet")
        shutil.copy(src, cell / "x (copy).runs.parquet")
        (cell / "0000009999-0000010007.runs.parquet").mkdir()
    trial("stray files and directories", stray)

    other_dir = work / "other"
    run_sweep(cfg(seed=1), other_dir, progress=False)

    def foreign(d: Path) -> None:
        src = sorted((other_dir / "chunks").rglob("*.runs.parquet"))[0]
        for suffix in (".runs.parquet", ".reps.parquet", ".chunk.json"):
            s = src.with_name(src.name.replace(".runs.parquet", suffix))
            shutil.copy(s, d / "chunks" / src.parent.name / s.name)
    trial("chunk of another seed copied in", foreign)

    # SIGKILL and in-flight checkpoints: a slower config in a child process
    slow_raw = {**BASE, "name": "faults-slow", "runs": 96, "chunk_size": 48, "segment_steps": 200,
                "checkpoint_interval_s": 0.001, "train": {"learning_rate": 0.3, "steps": 3000, "protocol": "full"}}
    slow = config.from_dict(slow_raw)
    slow_toml = write_toml(slow_raw, work / "slow.toml")
    slow_ref_dir = work / "slow-ref"
    run_sweep(slow, slow_ref_dir, progress=False)
    slow_ref = tables(slow_ref_dir)
    for i in range(a.kills):
        d = work / f"kill{i}"
        p = sweep_cli(slow_toml, d)
        time.sleep(float(rng.uniform(3, 12)))
        p.send_signal(signal.SIGKILL)
        p.wait()
        results.setdefault("SIGKILL, then resume", Counter())[resume_outcome(d, slow, slow_ref)] += 1
        shutil.rmtree(d, ignore_errors=True)
    for i in range(a.kills):
        d = work / f"inflight{i}"
        p = sweep_cli(slow_toml, d)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list((d / "inflight").rglob("sha256-*.txt")):
            time.sleep(0.2)
        time.sleep(0.5)
        p.send_signal(signal.SIGKILL)
        p.wait()
        files = [f for f in (d / "inflight").rglob("*") if f.is_file()] if (d / "inflight").exists() else []
        if files:
            flip_bit(files[int(rng.integers(len(files)))], rng)
        results.setdefault("bit flip in an in-flight checkpoint", Counter())[resume_outcome(d, slow, slow_ref)] += 1
        shutil.rmtree(d, ignore_errors=True)

    # two writers started together on a fresh DIR, with different seeds: one must win, the other be refused
    other_raw = {**slow_raw, "seed": 7}
    other_toml = write_toml(other_raw, work / "other.toml")
    other_ref_dir = work / "other-ref"
    run_sweep(config.from_dict(other_raw), other_ref_dir, progress=False)
    refs = {0: slow_ref, 1: tables(other_ref_dir)}
    for i in range(max(1, a.kills // 2)):
        d = work / f"two{i}"
        procs = [sweep_cli(slow_toml, d), sweep_cli(other_toml, d)]
        outs = [pr.communicate() for pr in procs]
        codes = [pr.returncode for pr in procs]
        name = "two writers started together (other seeds)"
        if sorted(codes) != [0, 2]:
            results.setdefault(name, Counter())["CRASH" if set(codes) - {0, 2} else "DIFFERENT"] += 1
            print(f"    two writers: exit codes {codes}: {[o[1][-300:] for o in outs]}", flush=True)
            continue
        loser = codes.index(2)
        clear = "being written by" in outs[loser][1] or "different sweep config" in outs[loser][1]
        winner_same = same_tables(tables(d), refs[codes.index(0)])
        results.setdefault(name, Counter())["refused" if clear and winner_same else "DIFFERENT"] += 1
        shutil.rmtree(d, ignore_errors=True)

    # crafted directory: a user sampler module inside DIR, no merged tables; report from inside DIR
    d = work / "crafted"
    shutil.copytree(ref_dir, d)
    manifest = json.loads((d / "sweep.json").read_text())
    manifest["config"]["sampled"] = {**config.SampledConfig(distribution="user", sampler="evilmod:sample").__dict__}
    manifest["fingerprint"] = config.from_manifest(manifest["config"]).fingerprint()  # a consistent forgery
    (d / "sweep.json").write_text(json.dumps(manifest))
    marker = work / "IMPORTED"
    (d / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').write('x')\ndef sample(*a):\n    raise SystemExit\n")
    (d / "runs.parquet").unlink()
    (d / "minima.parquet").unlink()
    r = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, ''); from jaxsym.cli import app; app()",
                        "report", "."], cwd=d, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}."})
    results["crafted directory, report from inside it"] = Counter(
        {"IMPORTED" if marker.exists() else ("refused" if r.returncode in (0, 2) else "CRASH"): 1})

    results["malformed config (field named)"] = malformed([])
    print("\n| scenario | trials | same final tables | refused clearly | silently different | crashed | "
          "imported code |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, cnt in results.items():
        wrong = cnt["DIFFERENT"] + cnt["ACCEPTED"] + cnt["UNCLEAR"]
        print(f"| {name} | {sum(cnt.values())} | {cnt['same']} | {cnt['refused']} | {wrong} | {cnt['CRASH']} | "
              f"{cnt['IMPORTED']} |")
    Path(a.out).write_text(json.dumps({k: dict(v) for k, v in results.items()}, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    bad = sum(v[x] for v in results.values() for x in ("DIFFERENT", "CRASH", "IMPORTED", "ACCEPTED", "UNCLEAR"))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
