"""Devices and hosts: a mesh over the run axis of a chunk, and multi-process sweeps.

Within a process, a chunk's runs are sharded over all local devices (``jax.sharding.Mesh`` with one axis
``"runs"``); the jitted, vmapped programs then run data-parallel with no communication. Across processes
(``jax.distributed``), each process takes every ``process_count``-th chunk of each cell and writes its chunk
files into the shared results directory; process 0 waits for all chunks and writes the merged tables, which
are therefore the same as a single-process run's.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from threadpoolctl import threadpool_limits

from jaxsym.numerics import programs

R = TypeVar("R")


def local_mesh() -> Mesh:
    """A 1-d mesh over this process's devices, axis name ``"runs"``."""
    return Mesh(np.array(jax.local_devices()), ("runs",))


def n_local_devices() -> int:
    return jax.local_device_count()


def shard_runs(x: np.ndarray, mesh: Mesh | None = None) -> jax.Array:
    """Place an array with a leading run axis (length divisible by the device count) over the mesh."""
    mesh = mesh or local_mesh()
    spec = PartitionSpec("runs", *([None] * (np.ndim(x) - 1)))
    return jax.device_put(x, NamedSharding(mesh, spec))


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def initialize_distributed(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """``jax.distributed.initialize``; with no arguments it auto-detects SLURM, TPU pods and similar."""
    if coordinator is None and num_processes is None and process_id is None:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)


def batch_invariant_options() -> dict[str, str]:
    """XLA compiler options under which a run's arithmetic does not depend on how many runs share its program.

    On a CPU, XLA hands a dot whose *whole batch* is large enough to YNNPACK and computes smaller ones with its
    own loops; the two sum in different orders, so a vmapped run's float32 trajectory changed in the last bits
    with the number of slots or the chunk size (at k = d = 8: 32 slots and 64 differ; at k = 20 already 8 and
    16). Training programs are compiled with YNNPACK fusions off, which costs about 13% of the published
    sweep's rate here (``docs/benchmarks.md``). Other backends: none. On an H100 a run's float32 descent still
    differed in the last bits with its batch (XLA's GPU kernels; 4e-7 after 300 steps) though statuses and step
    counts of a sweep did not (``docs/benchmarks.md``, "On a GPU")."""
    return {"xla_cpu_experimental_ynn_fusion_type": ""} if jax.default_backend() == "cpu" else {}


@contextlib.contextmanager
def host_blas_one_thread() -> Iterator[None]:
    """Host BLAS and LAPACK (NumPy's and SciPy's OpenBLAS) on one thread while the block runs, restored after.

    A sweep's host linear algebra (the hand-off's Cholesky factors, inverses and eigenvalues, float64, (k·d)²
    matrices) runs beside XLA's threads and the other chunk workers. OpenBLAS's own threads then wait for cores
    that are busy, spinning: at k = d = 18 on the 2-core CPU with both cores busy, ``eigvalsh`` of a 324 × 324
    matrix took 336 ms on OpenBLAS's default threads and 6.5 ms on one, a Cholesky factor 7.7 ms and 2.0 ms
    (``docs/benchmarks.md``). One thread also makes the host's float64 numbers independent of the machine's
    core count. Process-wide (``threadpoolctl``), so it covers every worker thread of the sweep."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def full_float32(fn: Callable[..., R]) -> Callable[..., R]:
    """``fn`` traced with every float32 matrix product in full float32 (``jax.default_matmul_precision
    ("highest")``). JAX's default lets a GPU compute float32 products in TF32 (10-bit mantissas: errors near
    1e-3) and a TPU in bfloat16, and which kernel runs then depends on the batch: on an H100 a run trained
    inside a batch of 7 differed from the same run trained alone by 1e-4 after 300 steps
    (``docs/benchmarks.md``). No effect on a CPU or on float64."""
    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> R:
        with jax.default_matmul_precision("highest"):
            return fn(*args, **kwargs)
    return traced


def invariant_jit(fn: Callable[..., R], *, name: str | None = None, key: Any = None) -> Callable[..., R]:
    """Compile a training program whose runs' arithmetic should not depend on their batch: float32 products in
    full float32 (:func:`full_float32`) under :func:`batch_invariant_options`; stored across processes
    (:func:`jaxsym.numerics.programs.jit`) when ``name`` is given, else ``jax.jit``."""
    if name is None:
        return jax.jit(full_float32(fn), compiler_options=batch_invariant_options())
    return programs.jit(full_float32(fn), name=name, key=key, compiler_options=batch_invariant_options())


def use_compilation_cache(path: str | Path | None = None) -> Path | None:
    """Keep compiled XLA programs on disk so that later processes skip compiling them (JAX's persistent
    compilation cache). ``path`` defaults to ``$JAXSYM_COMPILATION_CACHE`` or ``~/.cache/jaxsym/xla``; setting
    ``JAXSYM_COMPILATION_CACHE=off`` disables it. Returns the directory used, or None."""
    where = path if path is not None else os.environ.get("JAXSYM_COMPILATION_CACHE",
                                                            str(Path.home() / ".cache" / "jaxsym" / "xla"))
    if str(where).lower() in ("", "off", "0", "none"):
        return None
    jax.config.update("jax_compilation_cache_dir", str(where))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return Path(where)
