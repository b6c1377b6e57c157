"""The results directory of a sweep: where everything lives, which chunks are finished, and who writes.

Layout::

    DIR/sweep.json                                   config, its fingerprint and the certificate thresholds
    DIR/sweep.log                                    log
    DIR/.lock                                        held (flock) by the one process writing DIR; pid and host
    DIR/chunks/<cell>/<start>-<stop>.runs.parquet    one row per run of a finished chunk
    DIR/chunks/<cell>/<start>-<stop>.reps.parquet    the chunk's distinct critical points (W, counts)
    DIR/chunks/<cell>/<start>-<stop>.chunk.json      the chunk's identity and checksums (written last)
    DIR/inflight/<cell>/<start>-<stop>/              orbax checkpoints of a chunk in training (+ identity.json)
    DIR/quarantine/…                                 files that failed verification (kept, never read)
    DIR/runs.parquet                                 one row per run (DESIGN §5), orbit ids global per cell
    DIR/minima.parquet                               one row per distinct critical point modulo the group

**A chunk is finished** when its identity file ``.chunk.json`` (written atomically after both tables) names
this sweep's fingerprint, the cell and the run range of the file name, and the SHA-256 of both tables, and the
runs table holds exactly the runs ``start … stop−1`` in order. Anything else — a bit flip, a truncated or
swapped file, a chunk of another sweep, a table without identity — is moved to ``DIR/quarantine`` with a
warning, and its runs are redone: a chunk is never adopted on its name alone. Files whose names are not chunk
names (``notes.runs.parquet``, a copy) are ignored.

**One writer.** :meth:`RunDir.lock` takes an advisory ``flock`` on ``DIR/.lock`` for the whole sweep (and for a
merge); a second writer is refused with the holder's pid and host. The kernel releases the lock when its
process dies, so a killed sweep never leaves a stale lock (on file systems without ``flock``, such as some
NFS mounts, the lock is not enforced).

**No symlinks.** Every path jaxsym writes or reads inside DIR must not be a symbolic link
(:meth:`RunDir.check_no_links`); writes replace files atomically (:mod:`jaxsym.io.results`), which never follows a
link. Temporary files of killed writers are removed by the next writer.

:class:`RunDir` is the only code that knows this layout: the driver, the merge, the report and the CLI go
through it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from jaxsym.io import columns as col
from jaxsym.io import results
from jaxsym.io.results import file_sha256

log = logging.getLogger("jaxsym")

CHUNK_RE = re.compile(r"^(\d{10})-(\d{10})\.runs\.parquet$")


class SweepDirError(RuntimeError):
    """The results directory cannot be used as asked (another sweep's, locked, a link, unreadable state)."""


def chunk_name(start: int, stop: int) -> str:
    return f"{start:010d}-{stop:010d}"


class _Entry:
    """A file of the directory's layout, named once: ``RunDir(d).manifest`` is ``d / "sweep.json"``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, rd: RunDir, owner: type | None = None) -> Path:
        return rd.root / self.name


@dataclass(frozen=True)
class RunDir:
    """A sweep's results directory (see the module docstring)."""

    root: Path
    manifest: ClassVar[_Entry] = _Entry("sweep.json")
    log: ClassVar[_Entry] = _Entry("sweep.log")
    runs_table: ClassVar[_Entry] = _Entry("runs.parquet")
    minima_table: ClassVar[_Entry] = _Entry("minima.parquet")
    lock_file: ClassVar[_Entry] = _Entry(".lock")

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def chunk_dir(self, cell: str) -> Path:
        return self.root / "chunks" / cell

    def chunk_paths(self, cell: str, start: int, stop: int) -> tuple[Path, Path]:
        """(runs, reps) files of the chunk of runs ``start … stop−1`` of cell ``cell`` (its label)."""
        base = self.chunk_dir(cell) / chunk_name(start, stop)
        return base.with_suffix(".runs.parquet"), base.with_suffix(".reps.parquet")

    def chunk_identity(self, runs_path: Path) -> Path:
        return runs_path.with_name(runs_path.name.replace(".runs.parquet", ".chunk.json"))

    def inflight(self, cell: str, start: int, stop: int) -> Path:
        return self.root / "inflight" / cell / chunk_name(start, stop)

    def inflight_saved(self) -> int:
        """In-flight chunk directories holding at least one saved step (:mod:`jaxsym.io.checkpoint`)."""
        return sum(1 for d in (self.root / "inflight").glob("*/*")
                   if d.is_dir() and any(c.name.isdigit() for c in d.iterdir()))

    @staticmethod
    def chunk_range(path: Path) -> tuple[int, int]:
        m = CHUNK_RE.match(path.name)
        if m is None:
            raise ValueError(f"{path.name} is not a chunk file name")
        return int(m.group(1)), int(m.group(2))

    # ---------------------------------------------------------------------------------------------
    # safety: links, one writer, leftovers
    # ---------------------------------------------------------------------------------------------
    def check_no_links(self, cells: Sequence[str] = ()) -> None:
        """Refuse DIR when a path jaxsym writes or reads inside it is a symbolic link (DIR itself may be one: where
        the results live is the user's choice)."""
        paths = [self.manifest, self.log, self.runs_table, self.minima_table, self.lock_file,
                 self.root / "chunks", self.root / "inflight", self.root / "quarantine",
                 self.root / "report.md", self.root / "figures"]
        paths += [self.chunk_dir(c) for c in cells] + [self.root / "inflight" / c for c in cells]
        for p in paths:
            if p.is_symlink():
                raise SweepDirError(f"{p} is a symbolic link; jaxsym does not write through links in a results "
                                    f"directory. Remove the link (or use another --out).")

    @contextlib.contextmanager
    def lock(self, what: str = "sweep", suffix: str = "") -> Iterator[None]:
        """Hold the directory's writer lock (module docstring) for the ``with`` block; ``suffix`` names one lock
        per process of a multi-process sweep (each writes only its own chunks)."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no advisory locks
            log.warning("no file locks on this platform: make sure one process writes %s", self.root)
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.check_no_links()
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.lock_file.with_name(self.lock_file.name + suffix), flags, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
                raise SweepDirError(f"{self.root} is being written by {holder}. Wait for it to finish (or stop "
                                    f"it), or use another --out.") from None
            since = time.strftime("%Y-%m-%d %H:%M:%S")
            info = f"{what}: pid {os.getpid()} on host {socket.gethostname()} since {since}"
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def remove_leftovers(self) -> None:
        """Temporary files of killed writers (``.<name>.<pid>.tmp``); call with the lock held.

        Only those whose writer is not a live process of this machine: the processes of a multi-process sweep
        prepare the directory at once, and one removing another's manifest in the making failed its start
        ("cannot write sweep.json"). A writer on another host of a shared filesystem cannot be checked."""
        dirs = [self.root, *(p for p in (self.root / "chunks").glob("*") if p.is_dir() and not p.is_symlink())]
        for d in dirs:
            for tmp in d.glob(".*.tmp"):
                if (tmp.is_file() or tmp.is_symlink()) and not _writer_alive(tmp):
                    tmp.unlink(missing_ok=True)

    def quarantine(self, path: Path, why: str) -> None:
        """Move a file that failed verification to ``DIR/quarantine/…`` (kept for inspection, never read)."""
        if not path.exists() and not path.is_symlink():
            return
        rel = path.relative_to(self.root)
        dest = self.root / "quarantine" / rel
        dest = dest.with_name(f"{dest.name}.{int(time.time())}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), dest)
        log.warning("%s moved to %s: %s", rel, dest.relative_to(self.root), why)

    # ---------------------------------------------------------------------------------------------
    # chunks: write, verify, list
    # ---------------------------------------------------------------------------------------------
    def write_chunk(self, fingerprint: str, cell: str, start: int, stop: int, rows: Any, reps: Any) -> None:
        """Write a finished chunk: both tables (atomically), then its identity with their checksums."""
        runs_path, reps_path = self.chunk_paths(cell, start, stop)
        results.atomic_write_parquet(reps, reps_path)
        results.atomic_write_parquet(rows, runs_path)
        ident = dict(fingerprint=fingerprint, cell=cell, start=start, stop=stop, rows=len(rows),
                     runs_sha256=file_sha256(runs_path), reps_sha256=file_sha256(reps_path))
        results.atomic_write_text(json.dumps(ident, indent=1), self.chunk_identity(runs_path))

    def verify_chunk(self, fingerprint: str, cell: str, runs_path: Path) -> str | None:
        """Why the chunk of ``runs_path`` is not a finished chunk of this sweep, or None when it is."""
        start, stop = self.chunk_range(runs_path)
        reps_path = runs_path.with_name(runs_path.name.replace(".runs.", ".reps."))
        ident_path = self.chunk_identity(runs_path)
        for p in (runs_path, reps_path, ident_path):
            if p.is_symlink() or not p.is_file():
                return f"{p.name} is missing or not a regular file"
        try:
            ident = json.loads(ident_path.read_text())
        except (OSError, ValueError) as e:
            return f"its identity file is unreadable ({e})"
        want = dict(fingerprint=fingerprint, cell=cell, start=start, stop=stop, rows=stop - start)
        if not isinstance(ident, dict):
            return "its identity file is not an object"
        for key, value in want.items():
            if ident.get(key) != value:
                return f"its identity says {key} = {ident.get(key)!r}, expected {value!r}"
        if ident.get("runs_sha256") != file_sha256(runs_path) or ident.get("reps_sha256") != file_sha256(reps_path):
            return "its content does not match its checksum"
        rows = results.read_parquet_checked(runs_path)
        if rows is None or results.read_parquet_checked(reps_path) is None:
            return "a table does not read back"
        if col.RUN not in rows or not np.array_equal(rows[col.RUN].to_numpy(), np.arange(start, stop)):
            return f"its runs are not exactly {start}..{stop - 1}"
        return None

    def chunk_files(self, cell: str) -> list[tuple[Path, Path]]:
        """(runs, reps) file pairs named like chunks (``<start>-<stop>.runs.parquet``), in run order; other
        names are ignored. Not verified: see :meth:`done_chunks`."""
        d = self.chunk_dir(cell)
        if not d.is_dir() or d.is_symlink():
            return []
        return [(p, p.with_name(p.name.replace(".runs.", ".reps.")))
                for p in sorted(d.iterdir()) if CHUNK_RE.match(p.name) and not p.is_dir()]

    def named_chunks(self, cell: str) -> list[tuple[int, int]]:
        """Ranges of the chunk files present, by name only (cheap; for polling)."""
        return [self.chunk_range(p) for p, _ in self.chunk_files(cell)]

    def done_chunks(self, cell: str, fingerprint: str, *, quarantine: bool = True) -> list[tuple[Path, Path]]:
        """The verified finished chunks of a cell, in run order, without overlaps; every other chunk file is
        quarantined (its runs will be redone; call with the lock held), or only skipped with
        ``quarantine=False`` (a read-only look, e.g. a dry run)."""
        done: list[tuple[Path, Path]] = []
        covered = -1
        for runs_path, reps_path in self.chunk_files(cell):
            why = self.verify_chunk(fingerprint, cell, runs_path)
            start, stop = self.chunk_range(runs_path)
            if why is None and start <= covered:
                why = "it overlaps an earlier chunk"
            if why is None:
                done.append((runs_path, reps_path))
                covered = stop - 1
                continue
            if not quarantine:
                continue
            log.warning("chunk %s/%s is not used: %s; its runs will be redone", cell, runs_path.name, why)
            for p in (runs_path, reps_path, self.chunk_identity(runs_path)):
                self.quarantine(p, why)
        return done

    def done_ranges(self, cell: str, fingerprint: str, *, quarantine: bool = True) -> list[tuple[int, int]]:
        """Run ranges of the verified finished chunks of a cell (:meth:`done_chunks`)."""
        return [self.chunk_range(p) for p, _ in self.done_chunks(cell, fingerprint, quarantine=quarantine)]

    def all_chunk_files(self) -> list[Path]:
        """Every chunk runs file of every cell (by name)."""
        root = self.root / "chunks"
        if not root.is_dir():
            return []
        return [p for d in root.iterdir() if d.is_dir() and not d.is_symlink() for p, _ in self.chunk_files(d.name)]


def _writer_alive(tmp: Path) -> bool:
    """Whether the pid in ``.<name>.<pid>.tmp`` is a live process other than this one."""
    pid = tmp.name.rsplit(".", 2)[-2] if tmp.name.count(".") >= 3 else ""
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True
