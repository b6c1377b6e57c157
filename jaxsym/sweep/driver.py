"""The sweep driver: grid cells → chunks of run indices → a cell pipeline → chunk files → tables.

The driver plans chunks (:mod:`jaxsym.sweep.plan`), resumes, runs this process's share, logs and shows progress; what
a chunk *is* belongs to the cell's :class:`~jaxsym.sweep.pipeline.CellPipeline` (:mod:`jaxsym.sweep.pipelines`), and
where
files live to the :class:`~jaxsym.io.rundir.RunDir`. Each finished chunk is written atomically; re-running the same
sweep on the same DIR skips finished chunks, so a sweep killed at any moment loses at most the chunks in flight
and repeats nothing that was written. Because every run's randomness comes from ``(seed, d, k, run)`` only,
which runs and statuses a sweep finds do not depend on chunk size or interruptions.

After the last chunk, :func:`finalize` merges chunk files into ``runs.parquet`` and each cell's distinct points
into ``minima.parquet`` (through the cell's pipeline).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from jaxsym import __version__
from jaxsym.config import NOT_RESULTS, Cell, ConfigError, SweepConfig, from_manifest
from jaxsym.engine.interface import StoppedError, stop_on
from jaxsym.io import checkpoint, results
from jaxsym.io import columns as col
from jaxsym.io.rundir import RunDir, SweepDirError
from jaxsym.numerics.parallel import host_blas_one_thread, n_local_devices
from jaxsym.sweep import plan
from jaxsym.sweep.pipelines import choose
from jaxsym.sweep.progress import progress as show_progress
from jaxsym.sweep.progress import signal_name, stop_signals

log = logging.getLogger("jaxsym")

__all__ = ["SweepDirError", "finalize", "merge", "missing_runs", "run_sweep"]


def sweep_manifest(cfg: SweepConfig) -> dict[str, Any]:
    """``DIR/sweep.json``: the config, its fingerprint, the thresholds, and what made the directory (versions,
    backend and device, jaxsym's git revision when it runs from a checkout)."""
    import platform

    import jaxlib

    dev = jax.devices()[0]
    return {"fingerprint": cfg.fingerprint(), "config": cfg.to_dict(), "jaxsym": __version__,
            "made_by": {"jaxsym": __version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
                        "python": platform.python_version(), "backend": jax.default_backend(),
                        "device": getattr(dev, "device_kind", str(dev)), "devices": jax.device_count(),
                        "git": _git_revision()},
            "thresholds": {**cfg.to_dict()["certify"], **(cfg.to_dict()["sampled"] or {})}}


def _differences(old: Any, cfg: SweepConfig) -> str:
    """``; differing: train.learning_rate 0.1 → 0.05, seed 0 → 1`` (settings that change results), or ""."""
    if not isinstance(old, dict):
        return ""
    new = cfg.to_dict()
    diffs = []

    def walk(a: Any, b: Any, prefix: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if not prefix and key in NOT_RESULTS:
                    continue
                walk(a.get(key), b.get(key), f"{prefix}{key}.")
        elif a != b and not (isinstance(a, list) and isinstance(b, (list, tuple)) and list(map(_plain, a))
                             == list(map(_plain, b))):
            diffs.append(f"{prefix[:-1]} {a!r} → {b!r}")

    walk(old, new, "")
    return f"; differing: {', '.join(diffs[:8])}" if diffs else ""


def _plain(x: Any) -> Any:
    return list(map(_plain, x)) if isinstance(x, (list, tuple)) else x


def _git_revision() -> str | None:
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    if not (repo / ".git").exists():  # an installed copy: not a checkout of jaxsym
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def prepare_dir(cfg: SweepConfig, rd: RunDir) -> None:
    """Create the directory or check that it belongs to this config (refuse a DIR made by another).
    Call with the lock held."""
    out, manifest = rd.root, rd.manifest
    rd.check_no_links([c.label for c in cfg.cells()])
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text())
            if not isinstance(old, dict):
                raise ValueError(f"it holds a {type(old).__name__}, not a sweep manifest")
        except (OSError, ValueError) as e:
            raise SweepDirError(f"{manifest} is unreadable ({e}). Nothing was changed. Its chunks carry their "
                                f"sweep's fingerprint, so with the original config file you can rebuild it: "
                                f"move {manifest} away and run that config again on {out}; a different config "
                                f"will redo every run rather than adopt them.") from None
        if old.get("fingerprint") != cfg.fingerprint():
            diffs = _differences(old.get("config"), cfg)
            what = "a different sweep config" if diffs else \
                "the same settings fingerprinted by another jaxsym version (another fingerprint schema)"
            raise SweepDirError(
                f"{out} holds results of {what} (fingerprint {old.get('fingerprint')}, this config "
                f"{cfg.fingerprint()}){diffs}. Use another --out DIR, or restore the original config (or "
                f"jaxsym version). Nothing was changed."
            )
    else:
        try:
            results.atomic_write_text(json.dumps(sweep_manifest(cfg), indent=2, default=str), manifest)
        except OSError as e:
            raise SweepDirError(f"cannot write {manifest}: {e.strerror or e}") from None
    rd.remove_leftovers()


# --------------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------------
class CellWork(NamedTuple):
    """What this process has left to do in one cell: its plan (every decision about it), the runs already done,
    its chunks (a lazy iterator, so that a cell of billions of runs is never listed) and their number."""

    plan: plan.CellPlan
    done: int
    chunks: Iterator[tuple[int, int]]
    n_chunks: int

    @property
    def cell(self) -> Cell:
        return self.plan.cell


def iter_work(cfg: SweepConfig, rd: RunDir, process_index: int = 0, process_count: int = 1) -> Iterator[CellWork]:
    """The :class:`CellWork` of each cell for process ``process_index`` of ``process_count``."""
    fp = cfg.fingerprint()
    share = (process_index, process_count)
    for cell in cfg.cells():
        cp = plan.plan_cell(cfg, cell)
        done = rd.done_ranges(cell.label, fp)
        yield CellWork(cp, sum(b - a for a, b in done), plan.plan_chunks(cfg.runs, done, cp.chunk_size, share),
                       plan.n_chunks(cfg.runs, done, cp.chunk_size, share))


def run_sweep(cfg: SweepConfig, out: str | Path, *, progress: bool = True, process_index: int | None = None,
              process_count: int | None = None, on_chunk: Callable[[Cell, int, int], None] | None = None,
              wait_timeout_s: float = 7 * 86400, shard: tuple[int, int] | None = None) -> None:
    """Run (or resume) every missing chunk of this process's share, then :func:`finalize` (process 0).

    ``process_index``/``process_count`` default to ``jax.process_index()``/``jax.process_count()``;
    process 0 waits for the other processes' chunk files before merging. ``shard = (i, N)`` runs share ``i``
    of ``N`` independent jobs (e.g. a SLURM array) and neither waits nor merges: :func:`merge` does, once all
    shards are in. The directory's lock is held throughout (one lock per process or shard): a second sweep
    of the same share on the same DIR is refused. Host BLAS runs on one thread meanwhile
    (:func:`~jaxsym.numerics.parallel.host_blas_one_thread`).
    """
    if shard is not None:
        process_index, process_count = shard
    rd = RunDir(Path(out))
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    plan.validate(cfg)
    if rd.root.exists() and not rd.root.is_dir():
        raise SweepDirError(f"{rd.root} is a file, not a directory; choose another --out")
    try:
        rd.root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SweepDirError(f"cannot create {rd.root}: {e.strerror or e}") from None
    with rd.lock("sweep" if process_count == 1 else f"sweep process {process_index}",
                 suffix="" if process_count == 1 else f".p{process_index}"), host_blas_one_thread():
        prepare_dir(cfg, rd)
        with _log_to(rd):
            try:
                with stop_signals():
                    _run(cfg, rd, progress, process_index, process_count, on_chunk)
            except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: the chunks in flight have saved and stopped
                line = stopped_line(cfg, rd, e)
                log.warning(line)
                print(line, file=sys.stderr, flush=True)
                raise
            if process_index == 0 and shard is None:
                _wait_for_all_chunks(cfg, rd, wait_timeout_s)
                finalize(cfg, rd.root, locked=True)


def stopped_line(cfg: SweepConfig, rd: RunDir, stop: BaseException) -> str:
    """One line after an orderly stop: what is saved and how to resume."""
    fp = cfg.fingerprint()
    done = sum(b - a for cell in cfg.cells() for a, b in rd.done_ranges(cell.label, fp, quarantine=False))
    total = cfg.runs * len(cfg.cells())
    inflight = rd.inflight_saved()
    held = (f"; {inflight} chunk{'s' if inflight != 1 else ''} in flight saved {'their' if inflight != 1 else 'its'} "
            f"state" if inflight else "")
    return (f"jaxsym: stopped by {signal_name(stop)}. Saved in {rd.root}: {done:,} of {total:,} runs in finished "
            f"chunks{held}. Run the same command (same config and --out) to resume; nothing saved is repeated.")


def read_sweep(rd: RunDir) -> tuple[dict[str, Any], SweepConfig]:
    """``DIR/sweep.json`` and the config it records; :class:`SweepDirError` when DIR holds no readable sweep."""
    if not rd.root.is_dir():
        raise SweepDirError(f"{rd.root} is not a directory; give the --out directory of a sweep")
    if not rd.manifest.is_file():
        raise SweepDirError(f"{rd.root} holds no sweep (no sweep.json); give the --out directory of a sweep")
    try:
        manifest = json.loads(rd.manifest.read_text())
        return manifest, from_manifest(manifest["config"])
    except (OSError, ValueError, KeyError, TypeError, ConfigError) as e:
        raise SweepDirError(f"{rd.manifest} is not a readable sweep manifest ({e})") from None


def missing_runs(cfg: SweepConfig, rd: RunDir) -> dict[str, list[tuple[int, int]]]:
    """Per cell, the run ranges no verified chunk covers (empty when the sweep is complete)."""
    fp = cfg.fingerprint()
    out = {}
    for cell in cfg.cells():
        gaps = plan.missing_ranges(cfg.runs, rd.done_ranges(cell.label, fp))
        if gaps:
            out[cell.label] = gaps
    return out


def merge(out: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge a sharded sweep (``run_sweep(..., shard=(i, N))`` for every i) once all its runs are in; refuses,
    naming the missing runs, while any are missing. Takes the config from ``DIR/sweep.json``."""
    rd = RunDir(Path(out))
    manifest, cfg = read_sweep(rd)
    if manifest.get("fingerprint") != cfg.fingerprint():
        raise SweepDirError(f"{rd.root} was fingerprinted by another jaxsym version ({manifest.get('fingerprint')}, "
                            f"now {cfg.fingerprint()}); nothing was changed. Run `jaxsym sweep` with its config.")
    with rd.lock("merge"):
        gaps = missing_runs(cfg, rd)
        if gaps:
            listed = "; ".join(f"{c}: runs {', '.join(f'{a}..{b - 1}' for a, b in g)}" for c, g in gaps.items())
            raise SweepDirError(f"{rd.root} is missing runs, so it is not merged: {listed}. Run the shards that "
                                f"hold them (the same command resumes), then merge again.")
        return finalize(cfg, rd.root, locked=True)


class _CellPrograms:
    """Each cell's pipeline and programs, built once by the first chunk that needs them and dropped after the
    cell's last chunk (so a long sweep holds the compiled programs of at most ``workers`` cells)."""

    def __init__(self, cfg: SweepConfig, plans: dict[str, plan.CellPlan], chunks_per_cell: dict[str, int]) -> None:
        self.cfg = cfg
        self.plans = plans
        self.left = dict(chunks_per_cell)
        self.built: dict[str, tuple[Any, Any]] = {}
        self.locks = {label: threading.Lock() for label in chunks_per_cell}
        self.finished: set[str] = set()
        self.lock = threading.Lock()

    def get(self, cell: Cell) -> tuple[Any, Any]:
        with self.locks[cell.label]:
            if cell.label not in self.built:
                cp = self.plans[cell.label]
                pipeline = choose(cp)
                self.built[cell.label] = (pipeline, pipeline.build(self.cfg, cp))
            return self.built[cell.label]

    def warm(self, cell: Cell) -> bool:
        """A chunk of this cell has finished in this process (so its programs are compiled)."""
        return cell.label in self.finished

    def done(self, cell: Cell) -> None:
        self.finished.add(cell.label)
        with self.lock:
            self.left[cell.label] -= 1
            if self.left[cell.label] == 0:
                self.built.pop(cell.label, None)


def _run(cfg: SweepConfig, rd: RunDir, progress: bool, process_index: int, process_count: int,
         on_chunk: Callable[[Cell, int, int], None] | None) -> None:
    """Run this process's chunks, up to :func:`~jaxsym.sweep.plan.workers_for` at once (one thread each; with more
    than one, the costliest first: runs × k·d·(k+m)); the main thread shows progress and calls ``on_chunk``.
    An exception in a chunk, or in the main thread (Ctrl-C, ``on_chunk``), stops the other chunks at their next
    segment with their in-flight state saved (:func:`~jaxsym.engine.interface.stop_on`), then propagates: chunks are
    independent, so which of them finished first changes no result."""
    fp = cfg.fingerprint()
    work = list(iter_work(cfg, rd, process_index, process_count))
    workers = plan.workers_for(cfg)
    log.info("sweep %s (process %d/%d, %d local devices, %d workers): %d cells, %d runs each, %d chunks to run",
             cfg.name, process_index, process_count, n_local_devices(), workers, len(work), cfg.runs,
             sum(w.n_chunks for w in work))
    cells = _CellPrograms(cfg, {w.cell.label: w.plan for w in work}, {w.cell.label: w.n_chunks for w in work})
    stop = threading.Event()

    def run_one(cell: Cell, start: int, stop_: int) -> None:
        with stop_on(stop):
            if stop.is_set():
                raise StoppedError(cell.label)
            pipeline, programs = cells.get(cell)
            warm = cells.warm(cell)  # its programs compiled: this chunk's time is a rate for `jaxsym plan`
            t0 = time.perf_counter()
            inflight = rd.inflight(cell.label, start, stop_)
            checkpoint.claim(inflight, dict(fingerprint=fp, cell=cell.label, start=start, stop=stop_))
            rows, reps, stats = pipeline.run_chunk(cfg, programs, start, stop_, inflight)
            t_write = time.perf_counter()
            rd.write_chunk(fp, cell.label, start, stop_, rows, reps)
            stats = {**(stats or {}), "write_s": time.perf_counter() - t_write}
            checkpoint.clear(inflight)
            cells.done(cell)
            if warm:
                plan.record_rate(cfg, cell, time.perf_counter() - t0, stop_ - start)
            log.info("%s runs %d..%d done in %.1fs%s", cell.label, start, stop_ - 1, time.perf_counter() - t0,
                     f" {stats}" if stats else "")

    if workers > 1:  # the costliest cells first, so that the workers finish together
        work.sort(key=lambda w: -w.plan.chunk_size * w.cell.k * w.cell.d
                  * (w.cell.k + w.cell.teacher_width))
    jobs = ((w.cell, a, b) for w in work for a, b in w.chunks)  # lazy: chunks are planned as workers free up
    with show_progress(progress) as bar, concurrent.futures.ThreadPoolExecutor(workers, "jaxsym-chunk") as pool:
        total = bar.add_task("all cells", total=cfg.runs * len(work), completed=sum(w.done for w in work)) \
            if bar is not None else None
        tasks = {w.cell.label: bar.add_task(w.cell.label, total=cfg.runs, completed=w.done) if bar else None
                 for w in work}
        futures: dict[concurrent.futures.Future[None], tuple[Cell, int, int]] = {}

        def submit(n: int) -> None:
            for job in itertools.islice(jobs, n):
                futures[pool.submit(run_one, *job)] = job

        submit(2 * workers)  # a few queued beyond the running ones, never the whole plan
        try:
            while futures:
                finished, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
                for fut in finished:
                    cell, a, b = futures.pop(fut)
                    fut.result()
                    if bar is not None:
                        bar.advance(tasks[cell.label], b - a)
                        bar.advance(total, b - a)  # its ETA is the sweep's
                    if on_chunk is not None:
                        on_chunk(cell, a, b)
                submit(len(finished))
        except BaseException:
            stop.set()  # the chunks in flight save and stop; the queued ones do not start
            for fut in futures:
                fut.cancel()
            concurrent.futures.wait(futures)
            raise


def _wait_for_all_chunks(cfg: SweepConfig, rd: RunDir, timeout_s: float) -> None:
    """Poll until every cell's runs are covered by chunk files (other processes' share).

    Polling looks at file names only; once they cover every run, one pass reads and validates the files
    (removing corrupt ones, which then count as missing again)."""
    deadline = time.monotonic() + timeout_s
    labels = [c.label for c in cfg.cells()]

    def missing(ranges: Callable[[str], list[tuple[int, int]]]) -> int:
        return sum(len(plan.missing_ranges(cfg.runs, ranges(label))) for label in labels)

    fp = cfg.fingerprint()
    while True:
        if not missing(rd.named_chunks) and not missing(lambda label: rd.done_ranges(label, fp)):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"chunks of other processes still missing in {rd.root} after {timeout_s:.0f}s; "
                               f"rerun the sweep to finish them")
        time.sleep(1.0)


@contextlib.contextmanager
def _log_to(rd: RunDir) -> Iterator[None]:
    """Log to ``DIR/sweep.log`` for the ``with`` block (the handler is removed after: a second sweep in the
    same process does not write into the first one's log)."""
    h = logging.FileHandler(rd.log)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False  # the log file is the record; the console shows the progress bar
    try:
        yield
    finally:
        log.removeHandler(h)
        h.close()


# --------------------------------------------------------------------------------------------------
# Merge: runs.parquet and minima.parquet (streamed: memory does not grow with the number of runs)
# --------------------------------------------------------------------------------------------------
def finalize(cfg: SweepConfig, out: str | Path, *, locked: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge finished chunks into ``runs.parquet`` and ``minima.parquet`` (also for a partial sweep).

    Only verified chunks are read (:meth:`~jaxsym.io.rundir.RunDir.done_chunks`); the directory's lock is taken
    unless the caller holds it (``locked``).

    ``runs.parquet`` is streamed chunk by chunk (one row group each), so memory stays flat in the number of
    runs. Returns ``(runs, minima)`` read back only when the runs table is small (≤ 10⁶ rows), else an
    empty runs frame.
    """
    rd = RunDir(Path(out))
    if not locked:
        with rd.lock("merge"):
            return finalize(cfg, out, locked=True)
    out = rd.root
    manifest = sweep_manifest(cfg)
    meta = {"thresholds": manifest["thresholds"], "fingerprint": cfg.fingerprint(), "made_by": manifest["made_by"]}
    all_minima: list[dict[str, Any]] = []
    tmp = out / f".runs.parquet.{os.getpid()}.tmp"
    writer: pq.ParquetWriter | None = None
    n_rows = 0
    try:
        for cell in cfg.cells():
            files = rd.done_chunks(cell.label, cfg.fingerprint())
            cp = plan.plan_cell(cfg, cell)
            minima, mapping, status_from_orbit, from_orbit = choose(cp).merge(cfg, cp, files)
            orbit_status = {m[col.ORBIT]: m[col.STATUS] for m in minima}
            orbit_rows = {m[col.ORBIT]: m for m in minima}
            all_minima += minima
            for i, (runs_path, _) in enumerate(files):
                rows = results.read_parquet_checked(runs_path)
                if rows is None:
                    continue
                local = rows[col.ORBIT].to_numpy()
                rows[col.ORBIT] = np.array([mapping[(i, int(o))] if o >= 0 else -1 for o in local], dtype=np.int64)
                if status_from_orbit:  # a stationary run takes the status of its orbit's certified representative
                    rows[col.STATUS] = [orbit_status.get(o, s) for o, s in zip(rows[col.ORBIT], rows[col.STATUS])]
                for name in from_orbit:  # values of the orbit's point (minima.parquet), for every run that ends there
                    rows[name] = [orbit_rows[o][name] if o in orbit_rows else v
                                  for o, v in zip(rows[col.ORBIT], rows[name])]
                table = pa.Table.from_pandas(rows, preserve_index=False)
                if writer is None:
                    old = table.schema.metadata or {}
                    schema = table.schema.with_metadata({**old, **results.encode_metadata(meta)})
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table.cast(writer.schema))
                n_rows += len(rows)
        if writer is None:
            results.atomic_write_parquet(pd.DataFrame(columns=results.RUNS_COLUMNS), rd.runs_table, meta)
        else:
            writer.close()
            writer = None
            os.replace(tmp, rd.runs_table)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    minima_df = pd.DataFrame(all_minima) if all_minima else pd.DataFrame(columns=results.MINIMA_COLUMNS)
    results.atomic_write_parquet(minima_df, rd.minima_table, meta)
    runs_df = pd.read_parquet(rd.runs_table) if n_rows <= 1_000_000 else pd.DataFrame()
    return runs_df, minima_df
