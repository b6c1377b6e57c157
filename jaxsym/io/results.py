"""Result tables (Parquet) and their atomic, validated storage.

Every file is written to a temporary name and renamed into place, so a killed process leaves either the
old file or the new one, never half of one. Where the files of a sweep live: :mod:`jaxsym.io.rundir`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

RUNS_COLUMNS = ["d", "k", "run", "seed", "loss", "grad_norm", "steps", "status", "orbit"]
MINIMA_COLUMNS = ["d", "k", "orbit", "status", "loss", "count", "grad_norm", "hess_min", "hess_max",
                  "n_distinct_eigs", "isotropy", "isotropy_order", "neuron_orbits", "W"]


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
