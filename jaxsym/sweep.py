"""Sweeps: grid cells → chunks of run indices → train → polish → certify → orbits → tables.

A cell's runs ``0 … runs−1`` stream through fixed-size chunks (padded, so every chunk is one compiled
program). Each finished chunk is written atomically to ``DIR/chunks/<cell>/`` (see
:mod:`jaxsym.results`); re-running the same sweep on the same DIR skips finished chunks, so a sweep killed
at any moment loses at most the chunks in flight and repeats nothing that was written. Because every run's
randomness comes from ``(seed, d, k, run)`` only, results do not depend on chunk size or interruptions.

After the last chunk, :func:`finalize` merges chunk files into ``runs.parquet`` and clusters the chunks'
distinct points into orbits per cell, each with its isotropy group and Hessian spectrum, into
``minima.parquet``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxsym import __version__, results
from jaxsym.certify import DIVERGED, NOT_CONVERGED, STATUSES, make_certify_batch
from jaxsym.config import Cell, SweepConfig
from jaxsym.model import identity_target
from jaxsym.orbits import cluster
from jaxsym.spectra import group_eigenvalues, hessian_eigenvalues
from jaxsym.symmetry import isotropy
from jaxsym.train import make_train_batch

log = logging.getLogger("jaxsym")

CRITICAL = ("global", "spurious", "saddle", "degenerate")


class SweepDirError(RuntimeError):
    """The output directory cannot be used for this sweep (another config, unreadable state)."""


# --------------------------------------------------------------------------------------------------
# Chunk planning
# --------------------------------------------------------------------------------------------------
def bytes_per_run(k: int, d: int, m: int, dtype: str) -> int:
    """Rough peak device memory per run of a chunk: training state and the float64 certificate."""
    item = 4 if dtype == "float32" else 8
    train = item * (12 * k * d + 8 * k * (k + m))
    certify = 8 * (6 * (k * d) ** 2 + 4 * k * (k + m) * d)
    return train + certify


def chunk_size_for(cfg: SweepConfig, cell: Cell) -> int:
    """Explicit ``chunk_size`` or the largest power of two within the memory budget (16 … 65536)."""
    if cfg.chunk_size is not None:
        return cfg.chunk_size
    per_run = bytes_per_run(cell.k, cell.d, cell.k, cell.train.dtype)
    n = max(16, min(65536, cfg.memory_budget_mb * 2**20 // per_run))
    return 1 << (int(n).bit_length() - 1)


def missing_ranges(total: int, done: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[0, total)`` not covered by the ``done`` ranges."""
    out, pos = [], 0
    for a, b in sorted(done):
        if a > pos:
            out.append((pos, min(a, total)))
        pos = max(pos, b)
    if pos < total:
        out.append((pos, total))
    return [(a, b) for a, b in out if b > a]


def plan_chunks(total: int, done: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Chunks of at most ``size`` runs covering what is not done, aligned to multiples of ``size``."""
    chunks = []
    for a, b in missing_ranges(total, done):
        start = a
        while start < b:
            stop = min(b, (start // size + 1) * size)
            chunks.append((start, stop))
            start = stop
    return chunks


# --------------------------------------------------------------------------------------------------
# One chunk
# --------------------------------------------------------------------------------------------------
@dataclass
class CellPrograms:
    """Compiled programs of one cell (built once, reused for every chunk)."""

    cell: Cell
    V: jax.Array
    train: Callable[[jax.Array], Any]
    certify: Callable[[jax.Array, jax.Array, jax.Array], Any]
    size: int


def build_programs(cfg: SweepConfig, cell: Cell) -> CellPrograms:
    V = jnp.asarray(identity_target(cell.k, cell.d, np.float32))
    with jax.enable_x64(True):
        cert = make_certify_batch(cfg.certify, np.asarray(V, np.float64))
    return CellPrograms(cell, V, make_train_batch(cell.train, V.astype(cell.train.dtype), cell.k, cfg.seed),
                        cert, chunk_size_for(cfg, cell))


def _padded(runs: np.ndarray, size: int) -> np.ndarray:
    """Pad to a multiple of ``size`` by repeating the last entry (results of padding are dropped)."""
    n = len(runs)
    target = -(-n // size) * size
    return np.concatenate([runs, np.full(target - n, runs[-1], dtype=runs.dtype)])


def run_chunk(cfg: SweepConfig, prog: CellPrograms, start: int, stop: int
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train, polish, certify and cluster runs ``start … stop−1`` of a cell.

    Returns the chunk's runs rows (``orbit`` is the chunk-local orbit) and its distinct points.
    """
    cell = prog.cell
    n = stop - start
    runs = np.arange(start, stop, dtype=np.int64)
    res = jax.device_get(prog.train(jnp.asarray(_padded(runs, prog.size), jnp.uint32)))
    res = jax.tree.map(lambda x: np.asarray(x)[:n], res)

    status = np.where(res.diverged, DIVERGED, NOT_CONVERGED).astype(np.int32)
    W = np.asarray(res.W, np.float64)
    loss = np.asarray(res.loss, np.float64)
    gnorm = np.asarray(res.grad_norm, np.float64)
    hmin = np.full(n, np.nan)
    hmax = np.full(n, np.nan)
    iters = np.zeros(n, np.int32)
    shift = np.zeros(n)
    eligible = np.flatnonzero(~res.diverged & (res.grad_norm <= cfg.certify.polish_from))
    if len(eligible):
        idx = _padded(eligible, prog.size)
        with jax.enable_x64(True):
            c = jax.device_get(prog.certify(jnp.asarray(W[idx]), jnp.asarray(gnorm[idx]),
                                            jnp.asarray(res.diverged[idx])))
        sl = slice(0, len(eligible))
        W[eligible], loss[eligible], gnorm[eligible] = c.W[sl], c.loss[sl], c.grad_norm[sl]
        hmin[eligible], hmax[eligible] = c.hess_min[sl], c.hess_max[sl]
        iters[eligible], shift[eligible], status[eligible] = c.polish_iters[sl], c.shift[sl], c.status[sl]

    names = np.array(STATUSES)[status]
    crit = np.flatnonzero(np.isin(names, CRITICAL))
    orbit = np.full(n, -1, dtype=np.int64)
    reps = pd.DataFrame(columns=["local_orbit", "run", "count", "W"])
    if len(crit):
        V64 = np.asarray(prog.V, np.float64)
        cl = cluster(W[crit], V64 if cell.k < cell.d else None, tol=cfg.certify.cluster_tol, order=runs[crit])
        orbit[crit] = cl.labels
        reps = pd.DataFrame({"local_orbit": np.arange(len(cl.reps)), "run": runs[crit][cl.reps],
                             "count": cl.counts, "W": list(W[crit][cl.reps].reshape(len(cl.reps), -1))})
    rows = pd.DataFrame({
        "d": cell.d, "k": cell.k, "run": runs, "seed": cfg.seed, "loss": loss, "grad_norm": gnorm,
        "steps": np.asarray(res.steps, np.int64), "status": names, "orbit": orbit,
        "train_loss": np.asarray(res.loss, np.float64), "train_grad_norm": np.asarray(res.grad_norm, np.float64),
        "polish_iters": iters, "polish_shift": shift, "hess_min": hmin, "hess_max": hmax,
        "cell": cell.label,
    })
    for name, value in cell.overrides:
        rows[name] = value
    return rows, reps


# --------------------------------------------------------------------------------------------------
# Directory state
# --------------------------------------------------------------------------------------------------
def _chunk_dir(out: Path, cell: Cell) -> Path:
    return out / "chunks" / cell.label


def _chunk_paths(out: Path, cell: Cell, start: int, stop: int) -> tuple[Path, Path]:
    base = _chunk_dir(out, cell) / f"{start:010d}-{stop:010d}"
    return base.with_suffix(".runs.parquet"), base.with_suffix(".reps.parquet")


def done_chunks(out: Path, cell: Cell) -> list[tuple[int, int]]:
    """Ranges of finished chunks; unreadable chunk files are removed (their runs will be redone)."""
    done = []
    for path in sorted(_chunk_dir(out, cell).glob("*.runs.parquet")):
        start, stop = (int(x) for x in path.name.split(".")[0].split("-"))
        reps_path = path.with_name(path.name.replace(".runs.", ".reps."))
        ok = results.read_parquet_checked(path) is not None and results.read_parquet_checked(reps_path) is not None
        if ok:
            done.append((start, stop))
        else:
            log.warning("chunk %s is corrupt or incomplete; its runs %d..%d will be redone", path, start, stop - 1)
            path.unlink(missing_ok=True)
            reps_path.unlink(missing_ok=True)
    return done


def sweep_manifest(cfg: SweepConfig) -> dict[str, Any]:
    return {"fingerprint": cfg.fingerprint(), "config": cfg.to_dict(), "jaxsym": __version__,
            "thresholds": {k: v for k, v in cfg.to_dict()["certify"].items()}}


def prepare_dir(cfg: SweepConfig, out: Path) -> None:
    """Create ``out`` or check that it belongs to this config (refuse a DIR made by another)."""
    manifest = out / "sweep.json"
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SweepDirError(f"{manifest} is unreadable ({e}); move it away only if {out} is yours") from None
        if old.get("fingerprint") != cfg.fingerprint():
            raise SweepDirError(
                f"{out} holds results of a different sweep config (fingerprint {old.get('fingerprint')}, "
                f"this config {cfg.fingerprint()}). Use another --out DIR, or restore the original config. "
                f"Nothing was changed."
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    results.atomic_write_text(json.dumps(sweep_manifest(cfg), indent=2, default=str), manifest)


# --------------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------------
def iter_work(cfg: SweepConfig, out: Path, process_index: int = 0, process_count: int = 1
              ) -> Iterator[tuple[Cell, int, list[tuple[int, int]]]]:
    """(cell, runs already done, chunks this process must run) for each cell."""
    for cell in cfg.cells():
        size = chunk_size_for(cfg, cell)
        done = done_chunks(out, cell)
        todo = plan_chunks(cfg.runs, done, size)
        mine = [c for c in todo if (c[0] // size) % process_count == process_index]
        yield cell, sum(b - a for a, b in done), mine


def run_sweep(cfg: SweepConfig, out: str | Path, *, progress: bool = True, process_index: int = 0,
              process_count: int = 1, on_chunk: Callable[[Cell, int, int], None] | None = None) -> None:
    """Run (or resume) every missing chunk of the sweep, then :func:`finalize` (process 0 only)."""
    out = Path(out)
    prepare_dir(cfg, out)
    _setup_log(out)
    work = list(iter_work(cfg, out, process_index, process_count))
    log.info("sweep %s: %d cells, %d runs each, %d chunks to run", cfg.name, len(work), cfg.runs,
             sum(len(c) for _, _, c in work))
    with _progress(progress) as bar:
        for cell, done, chunks in work:
            task = bar.add_task(cell.label, total=cfg.runs, completed=done) if bar else None
            if not chunks:
                continue
            prog = build_programs(cfg, cell)
            for start, stop in chunks:
                t0 = time.perf_counter()
                rows, reps = run_chunk(cfg, prog, start, stop)
                runs_path, reps_path = _chunk_paths(out, cell, start, stop)
                results.atomic_write_parquet(reps, reps_path)
                results.atomic_write_parquet(rows, runs_path)
                log.info("%s runs %d..%d done in %.1fs", cell.label, start, stop - 1, time.perf_counter() - t0)
                if bar is not None:
                    bar.advance(task, stop - start)
                if on_chunk is not None:
                    on_chunk(cell, start, stop)
    if process_index == 0:
        finalize(cfg, out)


def _setup_log(out: Path) -> None:
    path = str(out / "sweep.log")
    if not any(getattr(h, "baseFilename", None) == path for h in log.handlers):
        h = logging.FileHandler(path)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(h)
    log.setLevel(logging.INFO)


class _NoBar:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def _progress(enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class RunsPerSecond(TextColumn):
        def render(self, task: Any) -> Any:
            from rich.text import Text
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} runs/s" if speed else "… runs/s")

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                    RunsPerSecond(""), TimeElapsedColumn(), TimeRemainingColumn())


# --------------------------------------------------------------------------------------------------
# Merge: runs.parquet and minima.parquet
# --------------------------------------------------------------------------------------------------
def collect_cell(out: Path, cell: Cell) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All finished chunk rows and chunk representatives of a cell (chunk id added to the reps)."""
    rows, reps = [], []
    for i, path in enumerate(sorted(_chunk_dir(out, cell).glob("*.runs.parquet"))):
        r = results.read_parquet_checked(path)
        p = results.read_parquet_checked(path.with_name(path.name.replace(".runs.", ".reps.")))
        if r is None or p is None:
            continue
        r["chunk"] = i
        p["chunk"] = i
        rows.append(r)
        reps.append(p)
    if not rows:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(rows, ignore_index=True), pd.concat(reps, ignore_index=True)


def describe_point(W: np.ndarray, V: np.ndarray, tol: float, eig_tol: float = 1e-6) -> dict[str, Any]:
    """Isotropy and spectrum columns of a distinct critical point."""
    iso = isotropy(W, V if W.shape[0] < W.shape[1] else None, tol=tol)
    eigs = hessian_eigenvalues(W, V)
    spec = group_eigenvalues(eigs, eig_tol)
    return {"isotropy": iso.name, "isotropy_order": iso.order, "neuron_orbits": iso.neuron_orbits,
            "coordinate_orbits": iso.coordinate_orbits, "n_distinct_eigs": len(spec),
            "eig_values": [v for v, _ in spec], "eig_mults": [m for _, m in spec]}


def finalize(cfg: SweepConfig, out: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge finished chunks into ``runs.parquet`` and ``minima.parquet`` (also for a partial sweep)."""
    out = Path(out)
    all_runs, all_minima = [], []
    for cell in cfg.cells():
        rows, reps = collect_cell(out, cell)
        if rows.empty:
            continue
        V = identity_target(cell.k, cell.d)
        k, d = cell.k, cell.d
        orbit = np.full(len(rows), -1, dtype=np.int64)
        if len(reps):
            Ws = np.stack(reps["W"].to_numpy()).reshape(-1, k, d)
            cl = cluster(Ws, V if k < d else None, tol=cfg.certify.cluster_tol,
                         order=reps["run"].to_numpy(), weights=reps["count"].to_numpy())
            table = dict(zip(zip(reps["chunk"], reps["local_orbit"]), cl.labels))
            has = rows["orbit"].to_numpy() >= 0
            orbit[has] = [table[(c, o)] for c, o in zip(rows["chunk"][has], rows["orbit"][has])]
            rep_rows = rows.set_index("run").loc[reps["run"].to_numpy()[cl.reps]]
            for j, ridx in enumerate(cl.reps):
                W = Ws[ridx]
                r = rep_rows.iloc[j]
                all_minima.append({
                    "d": d, "k": k, "orbit": j, "status": r["status"], "loss": float(r["loss"]),
                    "count": int(cl.counts[j]), "grad_norm": float(r["grad_norm"]),
                    "hess_min": float(r["hess_min"]), "hess_max": float(r["hess_max"]),
                    **describe_point(W, V, cfg.certify.cluster_tol), "W": W.reshape(-1).tolist(),
                    "rep_run": int(reps["run"].iloc[ridx]), "cell": cell.label,
                    **dict(cell.overrides),
                })
        rows["orbit"] = orbit
        all_runs.append(rows.drop(columns=["chunk"]).sort_values("run", kind="stable"))
    meta = {"thresholds": sweep_manifest(cfg)["thresholds"], "fingerprint": cfg.fingerprint()}
    runs_df = pd.concat(all_runs, ignore_index=True) if all_runs else pd.DataFrame(columns=results.RUNS_COLUMNS)
    minima_df = pd.DataFrame(all_minima, columns=None if all_minima else results.MINIMA_COLUMNS)
    if not minima_df.empty:
        minima_df = _order_orbits(minima_df, runs_df)
    results.atomic_write_parquet(runs_df, out / "runs.parquet", meta)
    results.atomic_write_parquet(minima_df, out / "minima.parquet", meta)
    return runs_df, minima_df


def _order_orbits(minima: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Renumber orbits per cell by (status, loss) so ids are stable and readable; updates ``runs`` too."""
    status_rank = {s: i for i, s in enumerate(STATUSES)}
    minima = minima.assign(_s=minima["status"].map(status_rank))
    minima = minima.sort_values(["d", "k", "cell", "_s", "loss", "rep_run"], kind="stable").reset_index(drop=True)
    for cell, idx in minima.groupby("cell", sort=False).groups.items():
        old = minima.loc[idx, "orbit"].to_numpy()
        mapping = dict(zip(old, range(len(old))))
        minima.loc[idx, "orbit"] = np.arange(len(old))
        sel = (runs["cell"] == cell) & (runs["orbit"] >= 0)
        runs.loc[sel, "orbit"] = runs.loc[sel, "orbit"].map(mapping).to_numpy()
    return minima.drop(columns="_s")
