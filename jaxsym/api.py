"""Sweeps from Python: :func:`run` a sweep (or resume it) and :func:`load` a results directory as one object.

    import jaxsym
    res = jaxsym.run("sweeps/tiny.toml", "results/tiny")       # or a dict, or a SweepConfig
    res.runs, res.minima                                        # pandas DataFrames (runs.parquet, minima.parquet)
    res.shares()                                                # per cell and status: count, share, interval
    res = jaxsym.load("results/tiny")                           # later, in another session

Both go through the same driver as ``jaxsym sweep`` (:func:`jaxsym.sweep.driver.run_sweep`), so a sweep started from
a notebook resumes from the shell and the other way round; :func:`load` never runs code named by the
directory (see :func:`jaxsym.sweep.loading.load_tables`).

"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from jaxsym import config
from jaxsym.io import columns as col
from jaxsym.io.rundir import RunDir


@dataclass(frozen=True)
class Results:
    """A sweep's results directory, read.

    Attributes:
      dir: the results directory.
      config: the sweep's :class:`~jaxsym.config.SweepConfig` (from ``sweep.json``).
      runs: one row per run (``runs.parquet``; empty when nothing is merged yet).
      minima: one row per distinct critical point modulo the group (``minima.parquet``).
      state: ``"finished"``, ``"partial: …"``, or why there are no tables yet.
    """

    dir: Path
    config: config.SweepConfig
    runs: pd.DataFrame
    minima: pd.DataFrame
    state: str

    @property
    def manifest(self) -> dict[str, Any]:
        """``sweep.json``: the config, its fingerprint and what made the directory (``made_by``: versions,
        backend, device, git revision)."""
        return manifest(self.dir)

    @property
    def thresholds(self) -> dict[str, Any]:
        """The certificate thresholds the statuses were decided with."""
        return dict(self.manifest.get("thresholds", {}))

    def report(self, formats: tuple[str, ...] = ("png", "pdf")) -> Path:
        """Write ``DIR/report.md`` with its figures (:func:`jaxsym.report.markdown.write_report`); returns its path."""
        from jaxsym.report.markdown import write_report

        return write_report(self.dir, formats=formats)

    def shares(self, level: float = 0.95) -> pd.DataFrame:
        """How the runs of each cell ended: one row per cell and status with ``count``, ``runs`` (of the cell),
        ``share`` and its Wilson interval ``lo, hi`` at ``level`` (:func:`jaxsym.report.stats.status_counts`).

        A cell is a grid point with every axis (``d, k, m, target`` and each ``[train]`` setting of ``[grid]``,
        which appear as columns), so cells are never pooled; the shares are those of ``jaxsym summary``. For
        one column per status: ``res.shares().pivot(index="cell", columns="status", values="share")``."""
        from jaxsym.report.stats import status_counts

        return status_counts(self.runs, [name for name, _ in self.config.train_grid], level)

    def discovery(self, points: int = 40) -> pd.DataFrame:
        """Distinct orbits (and minima) among each cell's first n runs, at about ``points`` values of n
        (:func:`jaxsym.report.coverage.discovery`): a curve that flattens when more runs would find little new."""
        from jaxsym.report.coverage import discovery

        return discovery(self.runs, points=points)

    def unseen(self) -> pd.DataFrame:
        """Per cell, the Good–Turing estimate of the probability that one more run ends at an orbit not yet seen
        (orbits reached by one run / runs; :func:`jaxsym.report.coverage.unseen`)."""
        from jaxsym.report.coverage import unseen

        return unseen(self.runs)

    def coverage(self, atlas: str | Path | pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
        """Which atlas minima descent reaches: every minimum of ``atlas`` (a ``jaxsym atlas`` directory or its
        ``atlas.parquet`` table) against each cell with ``d = k`` of the identity target: runs that reached it,
        their share with an exact interval at ``level``, and for the ones never reached the bound on their basin
        share (:func:`jaxsym.report.coverage.atlas_coverage`); then the sweep's minima the atlas lacks."""
        from jaxsym.report.coverage import atlas_coverage

        table = atlas if isinstance(atlas, pd.DataFrame) else _atlas_table(Path(atlas))
        return atlas_coverage(table, self.runs, self.minima, level=level)

    def __repr__(self) -> str:
        return (f"Results({str(self.dir)!r}: {self.config.name}, {self.state}; {len(self.runs)} runs, "
                f"{len(self.minima)} distinct critical points)")

    def _repr_html_(self) -> str:
        """A notebook shows the state and the status shares per cell."""
        from html import escape

        head = f"<p><b>jaxsym results</b> <code>{escape(str(self.dir))}</code>: {escape(repr(self)[8:-1])}</p>"
        if self.runs.empty:
            return head
        wide = self.shares().pivot(index=col.CELL, columns=col.STATUS, values="share")
        return head + wide.loc[:, (wide > 0).any()].round(3).to_html()


def _atlas_table(path: Path) -> pd.DataFrame:
    """``atlas.parquet`` of a ``jaxsym atlas`` directory (or the file itself), checked against its manifest."""
    from jaxsym.io.results import verify_results

    directory = path if path.is_dir() else path.parent
    if (directory / "manifest.json").exists():
        verify_results(directory)
    file = directory / "atlas.parquet"
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: give a `jaxsym atlas --out` directory")
    return pd.read_parquet(file)


def _as_config(cfg: str | Path | dict[str, Any] | config.SweepConfig) -> config.SweepConfig:
    if isinstance(cfg, config.SweepConfig):
        return cfg
    if isinstance(cfg, dict):
        return config.from_dict(cfg)
    return config.load(cfg)


def factory_name(factory: str | Callable[..., Any], what: str = "student") -> str:
    """``"package.module:factory"`` of a factory given as that string or as the function itself (which must be
    reachable by that name: defined at the top level of a module, or of a notebook, whose ``__main__`` serves
    the process that runs the sweep)."""
    if isinstance(factory, str):
        return factory
    from jaxsym.landscape.students import load_factory

    name = f"{getattr(factory, '__module__', None)}:{getattr(factory, '__qualname__', None)}"
    try:
        found = load_factory(name, what)
    except ValueError:
        found = None
    if found is not factory:
        raise config.ConfigError(f"the {what} {factory!r} cannot be found again by its name {name!r}: define it at "
                                 "the top level of a module (or a notebook) and pass it, or pass "
                                 "'package.module:factory'")
    return name


def run(cfg: str | Path | dict[str, Any] | config.SweepConfig, out: str | Path | None = None, *,
        progress: bool = True, on_chunk: Callable[[str, pd.DataFrame], None] | None = None,
        student: str | Callable[..., Any] | None = None, teacher: str | Callable[..., Any] | None = None
        ) -> Results:
    """Run (or resume) a sweep and return its :class:`Results`.

    ``cfg`` is a sweep TOML path, a dict of the same keys, or a :class:`~jaxsym.config.SweepConfig`; ``out``
    defaults to ``results/<name>``. ``on_chunk(cell_label, rows)`` is called after each chunk is written, with
    its rows (chunk-local orbit ids), e.g. to log to an experiment tracker. ``student(d, k, rngs)`` and
    ``teacher(d, m)``: flax module factories (or their ``"package.module:factory"`` names) for a sampled sweep
    (:mod:`jaxsym.landscape.flax_students`), set as ``sampled.student`` and ``sampled.teacher`` (a ``[sampled]``
    section with its defaults is added where the config has none). Raises :class:`~jaxsym.config.ConfigError`
    for a bad config and :class:`~jaxsym.io.rundir.SweepDirError` for a directory that cannot be used
    (another sweep's, locked).
    """
    import jax

    from jaxsym.numerics.parallel import use_compilation_cache
    from jaxsym.sweep.driver import run_sweep

    c = _as_config(cfg)
    if student is not None or teacher is not None:
        import dataclasses

        users = {k: factory_name(v, k) for k, v in (("student", student), ("teacher", teacher)) if v is not None}
        c = dataclasses.replace(c, sampled=dataclasses.replace(c.sampled or config.SampledConfig(), **users))
    out = Path(out) if out is not None else Path("results") / c.name
    if not jax.config.jax_compilation_cache_dir:  # keep a cache the user configured
        use_compilation_cache()
    rd = RunDir(out)

    def chunk_done(cell: config.Cell, start: int, stop: int) -> None:
        if on_chunk is not None:
            on_chunk(cell.label, pd.read_parquet(rd.chunk_paths(cell.label, start, stop)[0]))

    run_sweep(c, out, progress=progress, on_chunk=chunk_done)
    return load(out)


def load(out: str | Path) -> Results:
    """Read a results directory (finished, partial or empty) as :class:`Results`; merges finished chunks
    first when the tables are missing or older (never for a sweep whose merge would run a user sampler)."""
    from jaxsym.sweep.loading import load_tables

    out = Path(out)
    cfg, runs, minima, state = load_tables(out)
    return Results(out, cfg, runs, minima, state)


def manifest(out: str | Path) -> dict[str, Any]:
    """``DIR/sweep.json`` as a dict (config, fingerprint, versions, thresholds)."""
    from jaxsym.sweep.driver import read_sweep

    return read_sweep(RunDir(Path(out)))[0]
