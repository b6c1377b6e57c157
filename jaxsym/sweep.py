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
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from jaxsym import __version__, checkpoint, results
from jaxsym.activations import RELU, Objective, objective
from jaxsym.certify import DIVERGED, NOT_CONVERGED, STATUSES, make_certify_batch
from jaxsym.config import Cell, SweepConfig, bytes_per_run, certify_bytes_per_run
from jaxsym.model import make_target
from jaxsym.orbits import cluster
from jaxsym.parallel import n_local_devices, round_up, shard_runs
from jaxsym.spectra import group_eigenvalues, hessian_eigenvalues
from jaxsym.symmetry import isotropy
from jaxsym.train import BatchEngine, make_batch_engine

log = logging.getLogger("jaxsym")

SAMPLED_CHUNK = 128
CRITICAL = ("global", "spurious", "saddle", "degenerate")
REP_COLUMNS = ["status", "loss", "grad_norm", "hess_min", "hess_max"]  # carried by chunk representatives


class SweepDirError(RuntimeError):
    """The output directory cannot be used for this sweep (another config, unreadable state)."""


# --------------------------------------------------------------------------------------------------
# Chunk planning
# --------------------------------------------------------------------------------------------------
def chunk_size_for(cfg: SweepConfig, cell: Cell) -> int:
    """Explicit ``chunk_size`` or the largest power of two within the memory budget (16 … 65536)."""
    if cfg.chunk_size is not None:
        return cfg.chunk_size
    if cfg.sampled is not None:  # a chunk is the unit of resume; sampled runs are long
        return SAMPLED_CHUNK
    per_run = bytes_per_run(cell.k, cell.d, cell.teacher_width, cell.train.dtype)
    n = max(16, min(65536, cfg.memory_budget_mb * 2**20 // per_run))
    return 1 << (int(n).bit_length() - 1)


def certify_batch_for(cfg: SweepConfig, cell: Cell) -> int:
    """Runs certified at once: the largest power of two whose float64 certificates fit the budget (≥ 1)."""
    n = max(1, cfg.memory_budget_mb * 2**20 // certify_bytes_per_run(cell.k, cell.d, cell.teacher_width))
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
    V: np.ndarray
    engine: BatchEngine
    certify: Callable[[jax.Array, jax.Array, jax.Array], Any]
    size: int
    certify_size: int
    polish_from: float  # runs whose training ‖∇F‖ is above this are not polished (not_converged)


def cell_problem(cfg: SweepConfig, cell: Cell) -> tuple[np.ndarray, Objective]:
    """The cell's target ``V`` (m, d) and its :class:`~jaxsym.activations.Objective`."""
    V = make_target(cell.target, cell.teacher_width, cell.d, cfg.seed)
    return V, objective(cell.train.activation, cell.train.input_corr)


def build_programs(cfg: SweepConfig, cell: Cell) -> Any:
    """:class:`CellPrograms` (closed-form certificate), or the sampled ones of :mod:`jaxsym.sampled_sweep`."""
    if cfg.sampled is not None:
        from jaxsym import sampled_sweep
        size = round_up(chunk_size_for(cfg, cell), n_local_devices())
        return sampled_sweep.build_programs(cfg, cell, size,
                                            round_up(min(size, certify_batch_for(cfg, cell)), n_local_devices()))
    V, obj = cell_problem(cfg, cell)
    with jax.enable_x64(True):
        cert = make_certify_batch(cfg.certify, V, obj)
    engine = make_batch_engine(cell.train, jnp.asarray(V.astype(cell.train.dtype)), cell.k, cfg.seed)
    size = round_up(chunk_size_for(cfg, cell), n_local_devices())
    certify_size = round_up(min(size, certify_batch_for(cfg, cell)), n_local_devices())
    return CellPrograms(cell, V, engine, cert, size, certify_size, cfg.certify.polish_from)


def _padded(runs: np.ndarray, size: int) -> np.ndarray:
    """Pad to a multiple of ``size`` by repeating the last entry (results of padding are dropped)."""
    n = len(runs)
    return np.concatenate([runs, np.full(round_up(n, size) - n, runs[-1], dtype=runs.dtype)])


def _bucket(n: int, cap: int) -> int:
    """Padded batch size for ``n ≤ cap`` items: the next power of two (≥ min(8, cap), ≤ cap), a multiple of
    the device count, so that at most log2(cap) certificate programs are ever compiled per cell."""
    return round_up(min(max(min(8, cap), 1 << (n - 1).bit_length()), cap), n_local_devices())


def train_chunk(cfg: SweepConfig, prog: CellPrograms, runs: np.ndarray, inflight: Path | None) -> Any:
    """Train a (padded) chunk: by default the whole step budget in one jitted, vmapped program; with
    ``segment_steps`` set, in segments, checkpointing the in-flight state to ``inflight`` every
    ``checkpoint_interval_s`` seconds between them and resuming from a usable checkpoint there.
    Returns host arrays."""
    eng = prog.engine
    state = eng.init(shard_runs(runs.astype(np.uint32)))
    until = 0
    if inflight is not None and (got := checkpoint.restore(inflight, state)) is not None:
        until, host_state = got
        state = jax.tree.map(shard_runs, host_state)
        log.info("%s resumed in-flight chunk at step %d from %s", prog.cell.label, until, inflight)
    last_save = time.monotonic()
    segment = cfg.segment_steps or prog.cell.train.steps
    while int(eng.n_running(state)) > 0:
        until += segment
        state = eng.advance(state, jnp.int32(until))
        if inflight is not None and time.monotonic() - last_save > cfg.checkpoint_interval_s \
                and int(eng.n_running(state)) > 0:
            checkpoint.save(inflight, until, state)
            last_save = time.monotonic()
    return jax.tree.map(np.asarray, jax.device_get(eng.finish(state)))


def run_chunk(cfg: SweepConfig, prog: CellPrograms, start: int, stop: int, inflight: Path | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train, polish, certify and cluster runs ``start … stop−1`` of a cell.

    Returns the chunk's runs rows (``orbit`` is the chunk-local orbit) and its distinct points.
    """
    cell = prog.cell
    n = stop - start
    runs = np.arange(start, stop, dtype=np.int64)
    res = jax.tree.map(lambda x: x[:n], train_chunk(cfg, prog, _padded(runs, prog.size), inflight))

    status = np.where(res.diverged, DIVERGED, NOT_CONVERGED).astype(np.int32)
    W = np.asarray(res.W, np.float64)
    loss = np.asarray(res.loss, np.float64)
    gnorm = np.asarray(res.grad_norm, np.float64)
    hmin = np.full(n, np.nan)
    hmax = np.full(n, np.nan)
    iters = np.zeros(n, np.int32)
    shift = np.zeros(n)
    eligible = np.flatnonzero(~res.diverged & (res.grad_norm <= prog.polish_from))
    for start_ in range(0, len(eligible), prog.certify_size):  # sub-batches within the memory budget
        part = eligible[start_:start_ + prog.certify_size]
        idx = _padded(part, _bucket(len(part), prog.certify_size))
        with jax.enable_x64(True):
            c = jax.device_get(prog.certify(shard_runs(W[idx]), shard_runs(gnorm[idx]),
                                            shard_runs(res.diverged[idx])))
        sl = slice(0, len(part))
        W[part], loss[part], gnorm[part] = c.W[sl], c.loss[sl], c.grad_norm[sl]
        hmin[part], hmax[part] = c.hess_min[sl], c.hess_max[sl]
        iters[part], shift[part], status[part] = c.polish_iters[sl], c.shift[sl], c.status[sl]

    names = np.array(STATUSES)[status]
    crit = np.flatnonzero(np.isin(names, CRITICAL))
    orbit = np.full(n, -1, dtype=np.int64)
    rows = pd.DataFrame({
        "d": cell.d, "k": cell.k, "run": runs, "seed": cfg.seed, "loss": loss, "grad_norm": gnorm,
        "steps": np.asarray(res.steps, np.int64), "status": names, "orbit": orbit,
        "train_loss": np.asarray(res.loss, np.float64), "train_grad_norm": np.asarray(res.grad_norm, np.float64),
        "polish_iters": iters, "polish_shift": shift, "hess_min": hmin, "hess_max": hmax,
        "cell": cell.label, "m": cell.teacher_width, "target": cell.target,
    })
    for name, value in cell.overrides:
        rows[name] = value
    if cfg.save_weights:
        rows["W"] = list(W.reshape(n, -1))
    reps = pd.DataFrame(columns=["local_orbit", "run", "count", "W", *REP_COLUMNS])
    if len(crit):
        cl = cluster(W[crit], prog.V, tol=cfg.certify.cluster_tol, order=runs[crit])
        orbit[crit] = cl.labels
        rows["orbit"] = orbit
        at = crit[cl.reps]
        reps = pd.DataFrame({"local_orbit": np.arange(len(cl.reps)), "run": runs[at], "count": cl.counts,
                             "W": list(W[at].reshape(len(at), -1)), **{c: rows[c].to_numpy()[at] for c in REP_COLUMNS}})
    return rows, reps


# --------------------------------------------------------------------------------------------------
# Directory state
# --------------------------------------------------------------------------------------------------
def _chunk_dir(out: Path, cell: Cell) -> Path:
    return out / "chunks" / cell.label


def _chunk_paths(out: Path, cell: Cell, start: int, stop: int) -> tuple[Path, Path]:
    base = _chunk_dir(out, cell) / f"{start:010d}-{stop:010d}"
    return base.with_suffix(".runs.parquet"), base.with_suffix(".reps.parquet")


def _chunk_range(path: Path) -> tuple[int, int]:
    start, stop = (int(x) for x in path.name.split(".")[0].split("-"))
    return start, stop


def done_chunks(out: Path, cell: Cell) -> list[tuple[int, int]]:
    """Ranges of finished chunks; unreadable chunk files are removed (their runs will be redone)."""
    done = []
    for path in sorted(_chunk_dir(out, cell).glob("*.runs.parquet")):
        start, stop = _chunk_range(path)
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
            "thresholds": {**cfg.to_dict()["certify"], **(cfg.to_dict()["sampled"] or {})}}


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


def run_sweep(cfg: SweepConfig, out: str | Path, *, progress: bool = True, process_index: int | None = None,
              process_count: int | None = None, on_chunk: Callable[[Cell, int, int], None] | None = None,
              wait_timeout_s: float = 7 * 86400) -> None:
    """Run (or resume) every missing chunk of this process's share, then :func:`finalize` (process 0).

    ``process_index``/``process_count`` default to ``jax.process_index()``/``jax.process_count()``;
    process 0 waits for the other processes' chunk files before merging.
    """
    out = Path(out)
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    prepare_dir(cfg, out)
    _setup_log(out)
    work = list(iter_work(cfg, out, process_index, process_count))
    log.info("sweep %s (process %d/%d, %d local devices): %d cells, %d runs each, %d chunks to run", cfg.name,
             process_index, process_count, n_local_devices(), len(work), cfg.runs, sum(len(c) for _, _, c in work))
    with _progress(progress) as bar:
        for cell, done, chunks in work:
            task = bar.add_task(cell.label, total=cfg.runs, completed=done) if bar else None
            if not chunks:
                continue
            prog = build_programs(cfg, cell)
            for start, stop in chunks:
                t0 = time.perf_counter()
                inflight = out / "inflight" / cell.label / f"{start:010d}-{stop:010d}"
                rows, reps = _run_chunk_any(cfg, prog, start, stop, inflight)
                runs_path, reps_path = _chunk_paths(out, cell, start, stop)
                results.atomic_write_parquet(reps, reps_path)
                results.atomic_write_parquet(rows, runs_path)
                checkpoint.clear(inflight)
                log.info("%s runs %d..%d done in %.1fs", cell.label, start, stop - 1, time.perf_counter() - t0)
                if bar is not None:
                    bar.advance(task, stop - start)
                if on_chunk is not None:
                    on_chunk(cell, start, stop)
    if process_index == 0:
        _wait_for_all_chunks(cfg, out, wait_timeout_s)
        finalize(cfg, out)


def _run_chunk_any(cfg: SweepConfig, prog: Any, start: int, stop: int, inflight: Path
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    if isinstance(prog, CellPrograms):
        return run_chunk(cfg, prog, start, stop, inflight)
    from jaxsym import sampled_sweep
    return sampled_sweep.run_chunk(cfg, prog, start, stop, inflight)


def _wait_for_all_chunks(cfg: SweepConfig, out: Path, timeout_s: float) -> None:
    """Poll until every cell's runs are covered by chunk files (other processes' share).

    Polling looks at file names only; once they cover every run, one pass reads and validates the files
    (removing corrupt ones, which then count as missing again)."""
    deadline = time.monotonic() + timeout_s

    def missing(ranges: Callable[[Cell], list[tuple[int, int]]]) -> int:
        return sum(len(plan_chunks(cfg.runs, ranges(c), cfg.runs)) for c in cfg.cells())

    def named(cell: Cell) -> list[tuple[int, int]]:
        return [_chunk_range(p) for p in _chunk_dir(out, cell).glob("*.runs.parquet")]

    while True:
        if not missing(named) and not missing(lambda c: done_chunks(out, c)):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"chunks of other processes still missing in {out} after {timeout_s:.0f}s; "
                               f"rerun the sweep to finish them")
        time.sleep(1.0)


def _setup_log(out: Path) -> None:
    path = str(out / "sweep.log")
    if not any(getattr(h, "baseFilename", None) == path for h in log.handlers):
        h = logging.FileHandler(path)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False  # the log file is the record; the console shows the progress bar


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
# Merge: runs.parquet and minima.parquet (streamed: memory does not grow with the number of runs)
# --------------------------------------------------------------------------------------------------
def _chunk_files(out: Path, cell: Cell) -> list[tuple[Path, Path]]:
    files = []
    for path in sorted(_chunk_dir(out, cell).glob("*.runs.parquet")):
        files.append((path, path.with_name(path.name.replace(".runs.", ".reps."))))
    return files


def describe_point(W: np.ndarray, V: np.ndarray, tol: float, eig_tol: float = 1e-6, obj: Objective = RELU
                   ) -> dict[str, Any]:
    """Isotropy and spectrum columns of a distinct critical point."""
    iso = isotropy(W, V, tol=tol)
    spec = group_eigenvalues(hessian_eigenvalues(W, V, obj.hessian), eig_tol)
    return {"isotropy": iso.name, "isotropy_order": iso.order, "neuron_orbits": iso.neuron_orbits,
            "coordinate_orbits": iso.coordinate_orbits, "n_distinct_eigs": len(spec),
            "eig_values": [v for v, _ in spec], "eig_mults": [m for _, m in spec]}


def cell_minima(cfg: SweepConfig, cell: Cell, files: list[tuple[Path, Path]]
                ) -> tuple[list[dict[str, Any]], dict[tuple[int, int], int]]:
    """Distinct critical points of a cell from its chunks' representatives, and the map
    ``(chunk position, local orbit) → orbit id``. Orbit ids are ordered by (status, loss, first run)."""
    reps = results.read_chunks([reps_path for _, reps_path in files])
    if reps is None:
        return [], {}
    k, d = cell.k, cell.d
    V, obj = cell_problem(cfg, cell)
    Ws = np.stack(reps["W"].to_numpy()).reshape(-1, k, d)
    cl = cluster(Ws, V, tol=cfg.certify.cluster_tol, order=reps["run"].to_numpy(), weights=reps["count"].to_numpy())
    rank = {s: i for i, s in enumerate(STATUSES)}
    firsts = reps.iloc[cl.reps]
    order = sorted(range(len(cl.reps)), key=lambda j: (rank[firsts["status"].iloc[j]], firsts["loss"].iloc[j],
                                                       firsts["run"].iloc[j]))
    new_id = {old: new for new, old in enumerate(order)}
    minima = []
    for old in order:
        r = firsts.iloc[old]
        W = Ws[cl.reps[old]]
        minima.append({
            "d": d, "k": k, "orbit": new_id[old], "status": r["status"], "loss": float(r["loss"]),
            "count": int(cl.counts[old]), "grad_norm": float(r["grad_norm"]), "hess_min": float(r["hess_min"]),
            "hess_max": float(r["hess_max"]),
            **describe_point(W, V, cfg.certify.cluster_tol, obj=obj),
            "W": W.reshape(-1).tolist(), "rep_run": int(r["run"]), "cell": cell.label, "m": cell.teacher_width,
            "target": cell.target, **dict(cell.overrides),
        })
    mapping = {(int(c), int(o)): new_id[int(lab)]
               for c, o, lab in zip(reps["chunk"], reps["local_orbit"], cl.labels)}
    return minima, mapping


def finalize(cfg: SweepConfig, out: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge finished chunks into ``runs.parquet`` and ``minima.parquet`` (also for a partial sweep).

    ``runs.parquet`` is streamed chunk by chunk (one row group each), so memory stays flat in the number of
    runs. Returns ``(runs, minima)`` read back only when the runs table is small (≤ 10⁶ rows), else an
    empty runs frame.
    """
    from jaxsym import sampled_sweep

    out = Path(out)
    meta = {"thresholds": sweep_manifest(cfg)["thresholds"], "fingerprint": cfg.fingerprint()}
    all_minima: list[dict[str, Any]] = []
    tmp = out / f".runs.parquet.{os.getpid()}.tmp"
    writer: pq.ParquetWriter | None = None
    n_rows = 0
    try:
        for cell in cfg.cells():
            files = _chunk_files(out, cell)
            empirical = cfg.sampled is not None and not sampled_sweep.closed_form(cfg, cell)
            minima, mapping = (sampled_sweep.cell_minima if empirical else cell_minima)(cfg, cell, files)
            orbit_status = {m["orbit"]: m["status"] for m in minima}
            all_minima += minima
            for i, (runs_path, _) in enumerate(files):
                rows = results.read_parquet_checked(runs_path)
                if rows is None:
                    continue
                local = rows["orbit"].to_numpy()
                rows["orbit"] = np.array([mapping[(i, int(o))] if o >= 0 else -1 for o in local], dtype=np.int64)
                if empirical:  # a stationary run takes the status of its orbit's certified representative
                    rows["status"] = [orbit_status.get(o, s) for o, s in zip(rows["orbit"], rows["status"])]
                table = pa.Table.from_pandas(rows, preserve_index=False)
                if writer is None:
                    old = table.schema.metadata or {}
                    schema = table.schema.with_metadata({**old, **results.encode_metadata(meta)})
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table.cast(writer.schema))
                n_rows += len(rows)
        if writer is None:
            results.atomic_write_parquet(pd.DataFrame(columns=results.RUNS_COLUMNS), out / "runs.parquet", meta)
        else:
            writer.close()
            writer = None
            os.replace(tmp, out / "runs.parquet")
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    minima_df = pd.DataFrame(all_minima) if all_minima else pd.DataFrame(columns=results.MINIMA_COLUMNS)
    results.atomic_write_parquet(minima_df, out / "minima.parquet", meta)
    runs_df = pd.read_parquet(out / "runs.parquet") if n_rows <= 1_000_000 else pd.DataFrame()
    return runs_df, minima_df
