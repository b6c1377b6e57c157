"""In-flight checkpoints of a chunk's training state with orbax-checkpoint.

Finished chunks are stored as Parquet files (see :mod:`jaxsym.io.results`); a chunk that trains for a long
time additionally saves its :class:`jaxsym.engine.descent.TrainState` (weights, optimizer state, step counts) every
``checkpoint_interval_s`` seconds between training segments, under ``DIR/inflight/<cell>/<start>-<stop>/``.
A resumed sweep restores the newest checkpoint that reads back and matches the chunk (orbax's latest step can
be incomplete after a crash: older steps are tried, and with none usable the chunk starts over). Saves are
synchronous (async saves can hang in notebooks) and local to the process (no cross-host barrier), since each
process owns its chunks. PRNG keys are never stored: runs are re-derived from their indices.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxsym.io import results

log = logging.getLogger("jaxsym")


def _manager(path: Path) -> ocp.CheckpointManager:
    proc = jax.process_index()
    path.mkdir(parents=True, exist_ok=True)  # orbax cannot create it with process-local options
    options = ocp.CheckpointManagerOptions(
        max_to_keep=2, create=False, enable_async_checkpointing=False,
        multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=proc, active_processes={proc}),
    )
    return ocp.CheckpointManager(path.resolve(), options=options)


def _host(tree: Any) -> Any:
    return jax.tree.map(np.asarray, tree)


def digest(tree: Any) -> str:
    """SHA-256 of a pytree's leaves (dtype, shape and bytes, in tree order)."""
    h = hashlib.sha256()
    for x in jax.tree.leaves(_host(tree)):
        a = np.ascontiguousarray(x)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _digest_file(path: Path, step: int) -> Path:
    return path / f"sha256-{step}.txt"


def claim(path: Path, identity: dict[str, Any]) -> None:
    """Make ``path`` the in-flight directory of the chunk ``identity`` (fingerprint, cell, run range): one left
    by another sweep or chunk, or whose identity is unreadable, is removed (never resumed)."""
    ident_path = path / "identity.json"
    if path.exists():
        try:
            ok = json.loads(ident_path.read_text()) == identity
        except (OSError, ValueError):
            ok = False
        if not ok:
            log.warning("in-flight checkpoint %s belongs to another sweep or chunk (or has no identity); removed",
                        path)
            clear(path)
    if not ident_path.exists():
        results.atomic_write_text(json.dumps(identity), ident_path)


def save(path: Path, step: int, state: Any) -> bool:
    """Save ``state`` (a pytree of arrays) as checkpoint ``step`` (the chunk's training step).

    A failed save is logged and returns False: in-flight checkpoints only shorten a resume, so they
    must never stop a sweep.
    """
    try:
        with _manager(path) as mngr:
            mngr.save(step, args=ocp.args.StandardSave(_host(state)), force=True)
            mngr.wait_until_finished()
        results.atomic_write_text(digest(state), _digest_file(path, step))
        return True
    except Exception as e:
        log.warning("in-flight checkpoint %s step %d not saved: %s", path, step, e)
        return False


def restore(path: Path, like: Any) -> tuple[int, Any] | None:
    """Newest usable checkpoint as ``(step, state)`` with the structure and shapes of ``like``, or None."""
    if not path.exists():
        return None
    try:
        mngr = _manager(path)
        steps = sorted(mngr.all_steps(), reverse=True)
    except Exception as e:  # an unreadable directory: start the chunk over
        log.warning("in-flight checkpoint %s unreadable (%s); the chunk starts over", path, e)
        return None
    target = _host(like)
    with mngr:
        for step in steps:
            try:
                state = mngr.restore(step, args=ocp.args.StandardRestore(target))
            except Exception as e:
                log.warning("in-flight checkpoint %s step %d unusable (%s); removed, trying an older one",
                            path, step, e)
                shutil.rmtree(path / str(step), ignore_errors=True)  # else it blocks saving that step again
                continue
            same = jax.tree.structure(state) == jax.tree.structure(target) and all(
                np.shape(a) == np.shape(b) and np.asarray(a).dtype == np.asarray(b).dtype
                for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(target)))
            try:
                intact = _digest_file(path, step).read_text().strip() == digest(state)
            except OSError:
                intact = False
            if same and intact:
                return step, state
            why = "does not match this chunk" if not same else "does not match its checksum"
            log.warning("in-flight checkpoint %s step %d %s; removed", path, step, why)
            shutil.rmtree(path / str(step), ignore_errors=True)
            _digest_file(path, step).unlink(missing_ok=True)
    return None


def clear(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
