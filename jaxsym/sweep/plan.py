"""Planning a sweep: the memory model of the engines, chunk sizes, and which runs are left to do.

A cell's runs ``0 … runs−1`` stream through fixed-size chunks (padded, so every chunk is one compiled
program); a chunk is the unit of resumption. Chunks are aligned to multiples of the chunk size, so that a
resumed sweep plans the same chunks whatever was finished before.

Memory model (rough peak bytes per run, used to size chunks within ``memory_budget_mb``):

- training state of the closed-form engine: ``item · (12 k d + 8 k (k + m))`` (weights, optimizer state,
  gradient, the (k, k+m) angle matrices);
- float64 certificate: ``8 · (6 (k d)² + 4 k (k + m) d)`` (the Hessian, its square, the solve, ``eigh``), one run
  at a time on a CPU, a block of them at once on an accelerator (:func:`jaxsym.certify.exact.per_run`,
  :func:`certify_block`).

Workers: a process runs up to :func:`workers_for` chunks at once, each in its own thread (each chunk's work is
mostly in XLA programs, which release the GIL). The memory budget is shared among them.

Time: every finished chunk records its seconds per run (:func:`record_rate`) in ``rates.json`` beside the
compilation cache, keyed by what sets a cell's cost (backend and device, the cell's settings, the certificate
and sampling settings, slots); ``jaxsym plan`` estimates a cell's time from it (:func:`measured_rate`) when a
cell of the same settings has run on this machine before, and says so when none has.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jax
import numpy as np

from jaxsym.certify.exact import CPU_BLOCK  # runs per call on a CPU, one at a time inside
from jaxsym.config import Cell, ConfigError, SweepConfig
from jaxsym.engine.compact import thresholds
from jaxsym.engine.sgd import has_closed_form
from jaxsym.io import results
from jaxsym.landscape.activations import Objective, objective
from jaxsym.landscape.model import make_target
from jaxsym.numerics.parallel import n_local_devices, round_up

SAMPLED_CHUNK = 128  # runs per chunk of a sampled sweep (its runs are long; a chunk is the unit of resume)
MAX_AUTO_WORKERS = 4  # chunks at once on a CPU when ``workers`` is not set


def workers_for(cfg: SweepConfig) -> int:
    """Chunks a process runs at once: ``workers`` when set; else, on a CPU backend with one device, one per
    core available to the process (at most :data:`MAX_AUTO_WORKERS`): XLA runs these small programs on one
    core each, so concurrent chunks use the others; on an accelerator (or a multi-device CPU mesh) one, whose
    chunks already fill the devices."""
    if cfg.workers is not None:
        return cfg.workers
    if jax.default_backend() != "cpu" or n_local_devices() > 1:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_AUTO_WORKERS))


def train_bytes_per_run(d: int, k: int, m: int, dtype: str = "float32") -> int:
    """Rough peak device memory of one run's training state (weights, optimizer, gradient, angles)."""
    item = 4 if dtype == "float32" else 8
    return item * (12 * k * d + 8 * k * (k + m))


def certify_bytes_per_run(d: int, k: int, m: int) -> int:
    """Rough peak memory of one run's float64 certificate (Hessian, its square, the solve, eigh)."""
    return 8 * (6 * (k * d) ** 2 + 4 * k * (k + m) * d)


def validate(cfg: SweepConfig) -> None:
    """Refuse a config whose cells cannot run within ``memory_budget_mb`` (raises :class:`ConfigError`)."""
    for cell in cfg.cells():
        need = certify_bytes_per_run(cell.d, cell.k, cell.teacher_width)
        if need > cfg.memory_budget_mb * 2**20:
            raise ConfigError(f"memory_budget_mb = {cfg.memory_budget_mb} cannot fit the float64 certificate "
                              f"of one run of cell d={cell.d}, k={cell.k} ({need / 2**20:.0f} MB); raise it")


def chunk_size_for(cfg: SweepConfig, cell: Cell) -> int:
    """Explicit ``chunk_size``, or the largest power of two whose *training* state fits the memory budget
    divided among the workers (16 … 65536; the float64 certificate runs in blocks of at most 64 runs, so it does
    not limit chunks); never more than the runs of a cell (a chunk is not padded beyond them), an explicit
    size included."""
    if cfg.chunk_size is not None:
        return min(cfg.chunk_size, cfg.runs)
    if cfg.sampled is not None:
        return min(SAMPLED_CHUNK, cfg.runs)
    per_run = train_bytes_per_run(cell.d, cell.k, cell.teacher_width, cell.train.dtype)
    n = max(16, min(65536, cfg.memory_budget_mb * 2**20 // workers_for(cfg) // per_run))
    return min(1 << (int(n).bit_length() - 1), cfg.runs)


def chunk_padded(cfg: SweepConfig, cell: Cell) -> int:
    """The padded chunk size of a cell: a multiple of the local device count (one compiled program)."""
    return round_up(chunk_size_for(cfg, cell), n_local_devices())


CERTIFY_BLOCK = 64  # runs per call of the vmapped float64 programs on an accelerator (one compiled size), at most


def certify_block(cfg: SweepConfig, cell: Cell) -> int:
    """Runs per call of the per-run float64 programs: on a CPU :data:`CPU_BLOCK` (one run at a time inside a call,
    :func:`jaxsym.certify.exact.per_run`); on an accelerator, where they are vmapped, :data:`CERTIFY_BLOCK` or what
    the memory budget holds (:func:`certify_bytes_per_run` each)."""
    if jax.default_backend() == "cpu":
        return CPU_BLOCK
    per = certify_bytes_per_run(cell.d, cell.k, cell.teacher_width)
    return max(1, min(CERTIFY_BLOCK, cfg.memory_budget_mb * 2**20 // per))


# --------------------------------------------------------------------------------------------------
# Every decision about a cell, once
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CellPlan:
    """What is decided about a cell before any of its runs: made once by :func:`plan_cell` and passed to the
    pipeline's ``build``, ``run_chunk`` (through its programs) and ``merge``, so no stage decides it again.

    Attributes:
      cell: the grid cell.
      pipeline: ``closed_form`` (exact float64 certificate) or ``empirical`` (a sampled objective with no
        closed form: held-out samples, error bars).
      engine: ``compact`` (the fast protocol: compacting slots, hand-off between phases), ``batch`` (the full
        protocol, every run to its stop) or ``sampled_sgd``.
      V: (m, d) float64, the teacher's first layer (for every pipeline: the target of :func:`make_target`).
      objective: the closed form the certificate uses (:func:`jaxsym.landscape.activations.objective`).
      chunk_size: runs per chunk (:func:`chunk_size_for`).   padded: the chunk's compiled size
        (:func:`chunk_padded`).
      backend: ``jax.default_backend()`` when planned.   certify_block: runs per call of the per-run float64
        programs (:func:`certify_block`).
      uses_handoff: whether runs are certified by the hand-off test per orbit (the compact engine with more than
        one phase: :func:`jaxsym.engine.compact.thresholds`).
    """

    cell: Cell
    pipeline: str
    engine: str
    V: np.ndarray = dataclasses.field(compare=False, repr=False)
    objective: Objective
    chunk_size: int
    padded: int
    backend: str
    certify_block: int
    uses_handoff: bool


def plan_cell(cfg: SweepConfig, cell: Cell) -> CellPlan:
    """The :class:`CellPlan` of a cell (every decision in one place)."""
    empirical = cfg.sampled is not None and not has_closed_form(cfg.sampled, cell.train.activation)
    if cfg.sampled is not None:
        engine = "sampled_sgd"
    else:
        engine = "compact" if cell.train.protocol == "fast" else "batch"
    return CellPlan(cell, "empirical" if empirical else "closed_form", engine,
                    make_target(cell.target, cell.d, cell.teacher_width, cfg.seed),
                    objective(cell.train.activation, cell.train.input_corr), chunk_size_for(cfg, cell),
                    chunk_padded(cfg, cell), jax.default_backend(), certify_block(cfg, cell),
                    engine == "compact" and len(thresholds(cell.train)) > 1)


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


def plan_chunks(total: int, done: list[tuple[int, int]], size: int, share: tuple[int, int] = (0, 1)
                ) -> Iterator[tuple[int, int]]:
    """Chunks of at most ``size`` runs covering what is not done, aligned to multiples of ``size``, produced
    lazily: a cell of 2³² runs starts at once and in constant memory (its chunks are never listed).

    ``share = (i, n)`` keeps the chunks of process (or shard) ``i`` of ``n``: those whose aligned index
    ``start // size`` is ``i`` modulo ``n``."""
    i, n = share
    for a, b in missing_ranges(total, done):
        start = a
        while start < b:
            stop = min(b, (start // size + 1) * size)
            if (start // size) % n == i:
                yield start, stop
            start = stop


def n_chunks(total: int, done: list[tuple[int, int]], size: int, share: tuple[int, int] = (0, 1)) -> int:
    """How many chunks :func:`plan_chunks` produces, counted without producing them."""
    i, n = share

    def below(j: int) -> int:  # aligned indices in [0, j) that are i modulo n
        return max(0, (j - i + n - 1) // n)

    return sum(below(-(-b // size)) - below(a // size) for a, b in missing_ranges(total, done))


RATES_FILE = "rates.json"
_RATES_LOCK = threading.Lock()


def rate_key(cfg: SweepConfig, cell: Cell) -> str:
    """What a cell's cost depends on, hashed: backend, device, the cell's settings (sizes, target, training),
    the certificate and sampling settings and the slot count (not the seed, the run count or the chunking)."""
    dev = jax.devices()[0]
    what = [jax.default_backend(), getattr(dev, "device_kind", str(dev)), dataclasses.asdict(cell),
            dataclasses.asdict(cfg.certify), cfg.sampled and dataclasses.asdict(cfg.sampled), cfg.slots]
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _rates_path() -> Path | None:
    where = jax.config.jax_compilation_cache_dir
    return Path(where) / RATES_FILE if where else None


def _read_rates(path: Path) -> dict[str, dict[str, float]]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def record_rate(cfg: SweepConfig, cell: Cell, seconds: float, runs: int) -> None:
    """Remember the seconds per run of a finished chunk (an average weighted towards recent chunks). Only where
    the compilation cache is on; a failure to write is ignored (it only loses an estimate)."""
    path = _rates_path()
    if path is None or runs <= 0:
        return
    with _RATES_LOCK:  # chunks finish in several threads
        rates = _read_rates(path)
        key = rate_key(cfg, cell)
        per_run = seconds / runs
        old = rates.get(key)
        if isinstance(old, dict) and isinstance(old.get("s_per_run"), (int, float)):
            per_run = 0.5 * per_run + 0.5 * float(old["s_per_run"])
        rates[key] = dict(s_per_run=per_run, cell=cell.label, when=time.time())
        try:
            results.atomic_write_text(json.dumps(rates, indent=1), path)
        except OSError:
            pass


def measured_rate(cfg: SweepConfig, cell: Cell) -> float | None:
    """Seconds per run (per worker) of a cell of these settings measured on this machine, or None."""
    path = _rates_path()
    if path is None:
        return None
    got = _read_rates(path).get(rate_key(cfg, cell))
    value = got.get("s_per_run") if isinstance(got, dict) else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None
