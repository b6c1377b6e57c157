"""Result tables (Parquet) and their atomic, validated storage.

Every file is written to a temporary name and renamed into place, so a killed process leaves either the
old file or the new one, never half of one. Where the files of a sweep live: :mod:`jaxsym.io.rundir`; the
directories of the atlas and of families carry a manifest (:func:`write_results`, :func:`verify_results`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from jaxsym.io import columns as col

RUNS_COLUMNS = [col.D, col.K, col.RUN, col.SEED, col.LOSS, col.GRAD_NORM, col.STEPS, col.STATUS, col.ORBIT]
MINIMA_COLUMNS = [col.D, col.K, col.ORBIT, col.STATUS, col.LOSS, col.COUNT, col.GRAD_NORM, col.HESS_MIN, col.HESS_MAX,
                  col.N_DISTINCT_EIGS, col.ISOTROPY, col.ISOTROPY_ORDER, col.NEURON_ORBITS, col.W]


def atomic_write_parquet(df: pd.DataFrame, path: Path, metadata: dict[str, Any] | None = None) -> None:
    """Write ``df`` to ``path`` via a temporary file and ``os.replace`` (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        meta = dict(table.schema.metadata or {})
        meta.update(encode_metadata(metadata))
        table = table.replace_schema_metadata(meta)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def encode_metadata(metadata: dict[str, Any]) -> dict[bytes, bytes]:
    """Parquet schema metadata ``jaxsym.<key>`` → JSON."""
    return {b"jaxsym." + k.encode(): json.dumps(v).encode() for k, v in metadata.items()}


def atomic_write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_parquet_checked(path: Path) -> pd.DataFrame | None:
    """Read a Parquet file, or None when it is missing, truncated or corrupt."""
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException, ValueError):
        return None


def read_metadata(path: Path) -> dict[str, Any]:
    """The ``jaxsym.*`` metadata stored with a table."""
    meta = pq.read_schema(path).metadata or {}
    return {k.decode()[len("jaxsym."):]: json.loads(v) for k, v in meta.items() if k.startswith(b"jaxsym.")}


def read_chunks(paths: list[Path]) -> pd.DataFrame | None:
    """The readable, non-empty tables among ``paths`` concatenated, each row tagged with its file's position in
    ``paths`` (column ``chunk``); None when there are none."""
    frames = []
    for i, path in enumerate(paths):
        df = read_parquet_checked(path)
        if df is not None and len(df):
            frames.append(df.assign(chunk=i))
    return pd.concat(frames, ignore_index=True) if frames else None


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


MANIFEST = "manifest.json"


def write_results(directory: Path, what: dict[str, Any], *, tables: dict[str, pd.DataFrame] | None = None,
                  texts: dict[str, str] | None = None, written: Sequence[str] = ()) -> Path:
    """Write a results directory that is not a sweep (an atlas, a scan, a family): each table atomically with
    ``what`` as its metadata (``jaxsym.what``), each text atomically, then ``manifest.json`` — ``what`` (the
    command and its settings), the versions that made it, and every file's SHA-256 (those written here and the
    ``written`` ones already in the directory, e.g. figures) — last, atomically: a directory with a manifest is
    complete, and :func:`verify_results` says which file changed since. Returns the manifest's path."""
    import jax

    from jaxsym import __version__

    directory = Path(directory)
    files = list(written)
    for name, df in (tables or {}).items():
        atomic_write_parquet(df, directory / name, {"what": what})
        files.append(name)
    for name, text in (texts or {}).items():
        atomic_write_text(text, directory / name)
        files.append(name)
    manifest = {"what": what, "made_by": {"jaxsym": __version__, "jax": jax.__version__},
                "files": {name: file_sha256(directory / name) for name in sorted(set(files))}}
    atomic_write_text(json.dumps(manifest, indent=1, default=str) + "\n", directory / MANIFEST)
    return directory / MANIFEST


def verify_results(directory: Path) -> dict[str, Any]:
    """The manifest of a directory written by :func:`write_results`, after checking every file it lists; a
    ValueError naming the missing manifest, or the first file that is missing or changed."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        files = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is missing or unreadable ({type(e).__name__}): not a finished results "
                         f"directory") from None
    for name, digest in files.items():
        f = Path(directory) / name
        if not f.is_file():
            raise ValueError(f"{f} is listed in {path} but missing")
        if file_sha256(f) != digest:
            raise ValueError(f"{f} changed since {path} was written (SHA-256 differs)")
    return manifest
