"""SIGTERM at three points of a sampled sweep with default settings (no ``segment_steps``), then a rerun.

What SLURM does before it preempts or times out a job: SIGTERM, a grace period, SIGKILL. The script runs the
sweep once uninterrupted (the baseline), then again into a second directory, sending SIGTERM at three times
(fractions of the baseline's wall time, each measured from a (re)start) and restarting after each stop, and
finally lets it finish. It prints, per stop: the exit code, the seconds from SIGTERM to exit, the chunks in
flight that saved their state and the steps they resumed from (``sweep.log``); then whether both tables equal
the baseline's, and the time the interruptions cost (the pieces' wall times summed, less the baseline's).

    .venv/bin/python scripts/preempt.py [--out results/preempt] [--at 0.3 0.5 0.7]

Writes ``--out``/preempt.json.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

CONFIG = """name = "preempt"
seed = 0
runs = 128
[grid]
d = [6, 7, 8]
k = "d"
[train]
activation = "tanh"
learning_rate = 0.05
steps = 20000
[sampled]
batch_size = 128
"""


def sweep(cfg: Path, out: Path, kill_after: float | None = None) -> dict[str, float | int]:
    """One `jaxsym sweep` process; with ``kill_after``, SIGTERM after that many seconds."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "jaxsym", "sweep", str(cfg), "--out", str(out), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sent = None
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
    _, err = proc.communicate()
    end = time.monotonic()
    return {"rc": proc.returncode, "wall_s": end - t0, "exit_after_term_s": (end - sent) if sent else float("nan"),
            "said": err.strip().splitlines()[-1] if err.strip() else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results/preempt"))
    ap.add_argument("--at", type=float, nargs=3, default=[0.3, 0.5, 0.7])
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = args.out / "preempt.toml"
    cfg.write_text(CONFIG)
    base, cut = args.out / "baseline", args.out / "interrupted"
    for d in (base, cut):
        subprocess.run(["rm", "-rf", str(d)], check=True)
    baseline = sweep(cfg, base)
    print(f"baseline: {baseline['wall_s']:.1f} s, exit {baseline['rc']}", flush=True)
    stops = []
    for frac in args.at:
        r = sweep(cfg, cut, kill_after=frac * float(baseline["wall_s"]))
        stops.append({"at": frac, **r})
        print(f"SIGTERM at {frac:.0%} of the baseline's time: exit {r['rc']}, exit {r['exit_after_term_s']:.2f} s "
              f"after SIGTERM; {r['said']}", flush=True)
    final = sweep(cfg, cut)
    log = (cut / "sweep.log").read_text()
    resumed = [int(s) for s in re.findall(r"resumed in-flight chunk at step (\d+)", log)]
    same = {}
    for name in ("runs.parquet", "minima.parquet"):
        a, b = pd.read_parquet(base / name), pd.read_parquet(cut / name)
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
            same[name] = True
        except AssertionError:
            same[name] = False
    pieces = sum(float(s["wall_s"]) for s in stops) + float(final["wall_s"])
    result = {"baseline": baseline, "stops": stops, "final": final, "resumed_at_steps": resumed,
              "identical": same, "interruptions_cost_s": pieces - float(baseline["wall_s"])}
    (args.out / "preempt.json").write_text(json.dumps(result, indent=1))
    print(f"final run: exit {final['rc']}, {final['wall_s']:.1f} s; chunks resumed in flight at steps {resumed}")
    print(f"tables identical to the baseline: {same}; the three interruptions cost "
          f"{result['interruptions_cost_s']:.1f} s over the baseline's {baseline['wall_s']:.1f} s")


if __name__ == "__main__":
    main()
