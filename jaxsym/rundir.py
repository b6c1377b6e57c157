"""The results directory of a sweep: where everything lives, and which chunks are finished.

Layout::

    DIR/sweep.json                                   config, its fingerprint and the certificate thresholds
    DIR/sweep.log                                    log
    DIR/chunks/<cell>/<start>-<stop>.runs.parquet    one row per run of a finished chunk
    DIR/chunks/<cell>/<start>-<stop>.reps.parquet    the chunk's distinct critical points (W, counts)
    DIR/inflight/<cell>/<start>-<stop>/              orbax checkpoints of a chunk in training
    DIR/runs.parquet                                 one row per run (DESIGN §5), orbit ids global per cell
    DIR/minima.parquet                               one row per distinct critical point modulo the group

A chunk counts as done when its ``.runs.parquet`` exists and reads back; its ``.reps.parquet`` is renamed into
place first (:mod:`jaxsym.results` writes every file atomically). :class:`RunDir` is the only code that knows
this layout: the driver, the merge, the report and the CLI go through it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from jaxsym import results

log = logging.getLogger("jaxsym")


def chunk_name(start: int, stop: int) -> str:
    return f"{start:010d}-{stop:010d}"


@dataclass(frozen=True)
class RunDir:
    """A sweep's results directory (see the module docstring)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def manifest(self) -> Path:
        return self.root / "sweep.json"

    @property
    def log(self) -> Path:
        return self.root / "sweep.log"

    @property
    def runs_table(self) -> Path:
        return self.root / "runs.parquet"

    @property
    def minima_table(self) -> Path:
        return self.root / "minima.parquet"

    def chunk_dir(self, cell: str) -> Path:
        return self.root / "chunks" / cell

    def chunk_paths(self, cell: str, start: int, stop: int) -> tuple[Path, Path]:
        """(runs, reps) files of the chunk of runs ``start … stop−1`` of cell ``cell`` (its label)."""
        base = self.chunk_dir(cell) / chunk_name(start, stop)
        return base.with_suffix(".runs.parquet"), base.with_suffix(".reps.parquet")

    def inflight(self, cell: str, start: int, stop: int) -> Path:
        return self.root / "inflight" / cell / chunk_name(start, stop)

    @staticmethod
    def chunk_range(path: Path) -> tuple[int, int]:
        start, stop = (int(x) for x in path.name.split(".")[0].split("-"))
        return start, stop

    def chunk_files(self, cell: str) -> list[tuple[Path, Path]]:
        """(runs, reps) file pairs of a cell's chunks, in run order."""
        return [(p, p.with_name(p.name.replace(".runs.", ".reps.")))
                for p in sorted(self.chunk_dir(cell).glob("*.runs.parquet"))]

    def named_chunks(self, cell: str) -> list[tuple[int, int]]:
        """Ranges of the chunk files present, by name only (cheap; for polling)."""
        return [self.chunk_range(p) for p, _ in self.chunk_files(cell)]

    def done_chunks(self, cell: str) -> list[tuple[int, int]]:
        """Ranges of finished chunks; unreadable chunk files are removed (their runs will be redone)."""
        done = []
        for runs_path, reps_path in self.chunk_files(cell):
            start, stop = self.chunk_range(runs_path)
            if results.read_parquet_checked(runs_path) is not None \
                    and results.read_parquet_checked(reps_path) is not None:
                done.append((start, stop))
            else:
                log.warning("chunk %s is corrupt or incomplete; its runs %d..%d will be redone", runs_path, start,
                            stop - 1)
                runs_path.unlink(missing_ok=True)
                reps_path.unlink(missing_ok=True)
        return done

    def all_chunk_files(self) -> list[Path]:
        """Every chunk runs file of every cell."""
        return list((self.root / "chunks").glob("*/*.runs.parquet")) if (self.root / "chunks").exists() else []
