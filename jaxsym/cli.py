"""Command line: ``jaxsym sweep CONFIG [--out DIR]``, ``jaxsym report DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from jaxsym.io import columns as col
from jaxsym.io.rundir import RunDir

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Map the critical points of shallow ReLU networks and explain them by symmetry.")
console = Console(stderr=True, soft_wrap=True)  # paths in messages are not broken across lines


def _version(value: bool) -> None:
    if value:
        import jax

        from jaxsym import __version__
        print(f"jaxsym {__version__} (jax {jax.__version__}, backend {jax.default_backend()})")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="print the versions and exit")] = False) -> None:
    """Map the critical points of shallow ReLU networks and explain them by symmetry."""


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="sweep TOML file, e.g. sweeps/demo.toml")],
    out: Annotated[Path | None, typer.Option(help="results directory (default results/<name>)")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    chunk_size: Annotated[int | None, typer.Option(help="override the config's chunk size")] = None,
    distributed: Annotated[bool, typer.Option(help="jax.distributed.initialize() (auto-detects SLURM, TPU pods)")]
    = False,
    coordinator: Annotated[str | None, typer.Option(help="multi-process: coordinator host:port")] = None,
    num_processes: Annotated[int | None, typer.Option(help="multi-process: number of processes")] = None,
    process_id: Annotated[int | None, typer.Option(help="multi-process: this process's id")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a setting: key=value, e.g. "
                                                   "train.learning_rate=0.05 (repeatable)")] = None,
    shard: Annotated[str | None, typer.Option(
        help="run share i of N independent jobs, 'i/N' (default from SLURM_ARRAY_TASK_ID / "
             "SLURM_ARRAY_TASK_COUNT under a SLURM array); merge with `jaxsym merge DIR`")] = None,
) -> None:
    """Run a sweep; running it again on the same --out resumes where it stopped."""
    import dataclasses

    from jaxsym import config as cfgmod
    from jaxsym.numerics.parallel import use_compilation_cache
    from jaxsym.report.summary import print_summary
    from jaxsym.sweep import driver as sw

    use_compilation_cache()  # compiled programs are reused by later sweeps (JAXSYM_COMPILATION_CACHE=off: not)
    try:
        cfg = cfgmod.load(config, set_ or ())
        if chunk_size is not None:
            cfg = dataclasses.replace(cfg, chunk_size=chunk_size)
    except cfgmod.ConfigError as e:
        _fail(f"config error: {e}")
    out = out or Path("results") / cfg.name
    try:
        shard_ix = _shard(shard)
    except ValueError as e:
        _fail(e)
    if distributed or coordinator is not None:
        from jaxsym.numerics.parallel import initialize_distributed
        initialize_distributed(coordinator, num_processes, process_id)
    try:
        sw.run_sweep(cfg, out, progress=progress, shard=shard_ix)
    except KeyboardInterrupt as e:  # the driver has said in one line what is saved and how to resume
        from jaxsym.sweep.progress import exit_code

        raise typer.Exit(exit_code(e)) from None
    except cfgmod.ConfigError as e:
        _fail(f"config error: {e}")
    except sw.SweepDirError as e:
        _fail(e)
    except OSError as e:  # disk full, read-only, file-size limit: chunks already written are kept
        _fail(f"{e.strerror or e}{f' ({e.filename})' if e.filename else ''}. Finished chunks are kept; fix this "
              f"and run the same command again to resume.")
    import jax
    if shard_ix is not None:
        console.print(f"shard {shard_ix[0]}/{shard_ix[1]} done; when every shard is, run: jaxsym merge {out}")
        return
    if jax.process_index() != 0:
        return
    rd = RunDir(out)
    print_summary(_read_table(rd.runs_table), _read_table(rd.minima_table))
    console.print(f"tables in {rd.runs_table} and {rd.minima_table}")


def _shard(text: str | None) -> tuple[int, int] | None:
    """``"i/N"``, or the SLURM array's task id and count, or None."""
    import os

    if text is None:
        task, count = os.environ.get("SLURM_ARRAY_TASK_ID"), os.environ.get("SLURM_ARRAY_TASK_COUNT")
        if task is None or count is None:
            return None
        first = int(os.environ.get("SLURM_ARRAY_TASK_MIN", "0"))
        text = f"{int(task) - first}/{count}"
    i, sep, n = text.partition("/")
    if not sep or not i.strip().isdigit() or not n.strip().isdigit() or not 0 <= int(i) < int(n):
        raise ValueError(f"--shard takes i/N with 0 <= i < N, e.g. 0/4; got {text!r}")
    return int(i), int(n)


@app.command()
def merge(out: Annotated[Path, typer.Argument(help="results directory of a sharded sweep")]) -> None:
    """Merge a sharded sweep's chunks into the tables once every shard is in (refuses, naming what is missing)."""
    from jaxsym.report.summary import print_summary
    from jaxsym.sweep import driver as sw

    try:
        sw.merge(out)
    except sw.SweepDirError as e:
        _fail(e)
    rd = RunDir(out)
    print_summary(_read_table(rd.runs_table), _read_table(rd.minima_table))
    console.print(f"tables in {rd.runs_table} and {rd.minima_table}")


@app.command()
def plan(
    config: Annotated[Path, typer.Argument(help="sweep TOML file")],
    out: Annotated[Path | None, typer.Option(help="results directory (default results/<name>): count what is done")]
    = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a setting: key=value (repeatable)")]
    = None,
) -> None:
    """Dry run: the cells, chunk sizes and memory a sweep would use, and what is already done; runs nothing."""
    from rich.table import Table

    from jaxsym import config as cfgmod
    from jaxsym.io.rundir import SweepDirError
    from jaxsym.numerics.parallel import use_compilation_cache
    from jaxsym.sweep import plan as planmod
    from jaxsym.sweep.driver import read_sweep

    use_compilation_cache()  # where the measured rates are kept

    try:
        cfg = cfgmod.load(config, set_ or ())
        planmod.validate(cfg)
    except cfgmod.ConfigError as e:
        _fail(f"config error: {e}")
    rd = RunDir(out or Path("results") / cfg.name)
    fp = cfg.fingerprint()
    workers = planmod.workers_for(cfg)
    t = Table(title=f"{cfg.name}: {len(cfg.cells())} cells × {cfg.runs:,} runs, {workers} chunk"
                    f"{'s' if workers != 1 else ''} at once (fingerprint {fp})")
    for header in ("cell", "chunk size", "chunks", "training MB per chunk", "certificate MB (one run)", "done",
                "time left (est.)"):
        t.add_column(header, justify="right")
    try:
        same = read_sweep(rd)[0].get("fingerprint") == fp
    except SweepDirError:  # no sweep there yet (or an unreadable one): nothing counts as done
        same = False
    left_s, unknown = 0.0, 0
    for cell in cfg.cells():
        size = planmod.plan_cell(cfg, cell).chunk_size
        train_mb = planmod.train_bytes_per_run(cell.d, cell.k, cell.teacher_width, cell.train.dtype) * size / 2**20
        cert_mb = planmod.certify_bytes_per_run(cell.d, cell.k, cell.teacher_width) / 2**20
        done_ranges = rd.done_ranges(cell.label, fp, quarantine=False) if same else []
        done = sum(b - a for a, b in done_ranges)
        rate = planmod.measured_rate(cfg, cell)
        if rate is None:
            unknown += 1
        else:
            left_s += rate * (cfg.runs - done) / workers
        t.add_row(cell.label, f"{size:,}", f"{planmod.n_chunks(cfg.runs, done_ranges, size):,}", f"{train_mb:.1f}",
                  f"{cert_mb:.2f}", f"{done:,}", "—" if rate is None else _duration(rate * (cfg.runs - done) / workers))
    console.print(t)
    n = len(cfg.cells())
    if unknown == n:
        when = ("no time estimate: no cell of these settings has run on this machine yet (rates are measured by "
                "sweeps with the compilation cache on; see docs/benchmarks.md for rates on a CPU)")
    else:
        rest = f"; {unknown} of {n} cells not measured yet, not counted" if unknown else ""
        when = f"about {_duration(left_s)} left at the rates measured on this machine{rest} (compilation excluded)"
    console.print(f"results directory: {rd.root} ({'holds this sweep' if same else 'new or another sweep'}); "
                  f"{when}")


def _duration(seconds: float) -> str:
    """``42 s``, ``7.5 min``, ``3.2 h``, ``4.1 days``, ``2.3e+04 years``."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}" if unit == "years" else f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


@app.command()
def report(out: Annotated[Path, typer.Argument(help="results directory")],
           format_: Annotated[str, typer.Option("--format", help="figure formats, e.g. png,pdf,svg")] = "png,pdf",
           ) -> None:
    """Write DIR/report.md with PNG figures (works on finished, running, interrupted and empty sweeps)."""
    from jaxsym.io.rundir import SweepDirError
    from jaxsym.report.markdown import write_report

    try:
        path = write_report(out, tuple(f.strip().lower() for f in format_.split(",") if f.strip()))
    except (SweepDirError, OSError, ValueError) as e:
        _fail(e)
    console.print(f"report written to {path}")


@app.command()
def family(
    k: Annotated[int, typer.Option(help="the cell k = d to start from")],
    sweep_dir: Annotated[Path | None, typer.Argument(
        help="results directory with minima.parquet (or none: start from the atlas of --isotropy)")] = None,
    orbit: Annotated[int | None, typer.Option(help="orbit id in minima.parquet")] = None,
    isotropy: Annotated[str | None, typer.Option(
        help='or: the first point with this isotropy, e.g. "Δ(S9×S1)" or "D(S9xS1)"')] = None,
    k_max: Annotated[int, typer.Option(help="follow the family up to this k")] = 1000,
    spectra_at: Annotated[str, typer.Option(help="comma-separated k values for block spectra")]
    = "10,20,50,100,200,500,1000",
    out: Annotated[Path | None, typer.Option(help="output directory (default DIR/families/<name>)")] = None,
) -> None:
    """Follow a critical point's symmetry family in k, with its Hessian spectrum by isotypic blocks."""
    import numpy as np

    from jaxsym.fixedpoints.families import follow
    from jaxsym.io.results import write_results
    from jaxsym.numerics.parallel import use_compilation_cache
    from jaxsym.report.families import plot_family
    from jaxsym.symmetry.naming import ascii_name, isotropy_type

    use_compilation_cache()

    try:
        spectra_ks = [int(v) for v in spectra_at.split(",") if v.strip()]
    except ValueError:
        _fail(f"--spectra-at must be comma-separated integers, got {spectra_at!r}")
    if sweep_dir is None:  # from the type alone: the atlas of its fixed-point space at k
        minima = _atlas_start(k, isotropy)
        sweep_dir = Path("results")
    else:
        minima = _read_table(RunDir(sweep_dir).minima_table)
    sel = minima[(minima[col.K] == k) & (minima[col.D] == k)]
    if orbit is not None:
        sel = sel[sel[col.ORBIT] == orbit]
    if isotropy is not None:  # the Unicode name or its ASCII form, e.g. "D(S9xS1)"
        sel = sel[[ascii_name(str(n)) == ascii_name(isotropy) for n in sel[col.ISOTROPY]]]
    if sel.empty:
        console.print(f"[red]error:[/red] no such point in {sweep_dir}/minima.parquet (k = d = {k})")
        raise typer.Exit(2)
    row = sel.iloc[0]
    kind = isotropy_type(row[col.NEURON_ORBITS], k)
    name = f"{kind}-from-k{k}-orbit{row[col.ORBIT]}"
    slug = "".join(ch for ch in ascii_name(name) if ch.isalnum() or ch in "-_")
    out = out or sweep_dir / "families" / slug
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"following {row[col.ISOTROPY]} (loss {row[col.LOSS]:.6g}) from k = {k} to {k_max} ...")
    table, spectra = follow(np.asarray(row[col.W]).reshape(k, k), k_max,
                            spectra_ks, progress=True)
    fit = plot_family(table, spectra, f"family {kind} (from k = {k})", out / "family.png")
    write_results(out, dict(command="jaxsym family", k=k, isotropy=str(row[col.ISOTROPY]),
                            loss=float(row[col.LOSS]), k_max=k_max, spectra_at=spectra_ks),
                  tables={"family.parquet": table, "spectra.parquet": spectra},
                  written=["family.png", "family.pdf"])
    minima_k = spectra[spectra[col.HESS_MIN] > 0][col.K]
    console.print(f"critical point for k = {table[col.K].min()} … {table[col.K].max()}; a minimum from k = "
                  f"{minima_k.min() if len(minima_k) else '—'} (of the k with spectra); loss fit {fit}; "
                  f"tables and plot in {out}")


@app.command()
def atlas(
    k: Annotated[int, typer.Option(help="neurons k = d (identity target)")],
    out: Annotated[Path, typer.Option(help="output directory: atlas.parquet, atlas.md (and families.*)")],
    max_blocks: Annotated[int, typer.Option(help="isotropy types with at most this many blocks")] = 3,
    starts: Annotated[int, typer.Option(help="random Newton starts per fixed-point space")] = 32,
    seed: Annotated[int, typer.Option(help="seed of the starts")] = 0,
    k_max: Annotated[float | None, typer.Option(help="follow families in continuous k up to this k (integer-k "
                                                     "rows in atlas.parquet); off when absent")] = None,
    asymptotic_to: Annotated[float, typer.Option(help="follow families further, geometrically, to this k for "
                                                      "their limits")] = 1e5,
    families_of: Annotated[str, typer.Option("--families", help="which points' families to follow: minima "
                                                                 "(global and spurious) or all")] = "minima",
    extra: Annotated[int, typer.Option(help="also students of k + EXTRA neurons for the same k-neuron teacher: "
                                            "their fixed-point spaces and the split points of the minima "
                                            "(wide.parquet)")] = 0,
    k_to: Annotated[int | None, typer.Option(help="scan every k from --k to K_TO with restricted computations "
                                                  "only (for k in the hundreds; resumable: OUT/scan/); with "
                                                  "--k-max, the families of every local minimum found")] = None,
) -> None:
    """Critical points of every fixed-point space Fix(Δ(S_p1×…×S_pr)) at k, by Newton from random starts (no
    descent), each with its exact isotropy, loss, Hessian index and λ_min; with --k-max, their families in
    continuous k (births, deaths, limits: families.parquet, families.png); with --extra N, students of k + N
    neurons: whether each minimum survives being split over N more neurons, and the minima of the wider spaces."""
    import pandas as pd

    from jaxsym.fixedpoints.atlas import atlas as build
    from jaxsym.fixedpoints.atlas import families
    from jaxsym.io.results import write_results
    from jaxsym.numerics.parallel import use_compilation_cache
    from jaxsym.report.families import plot_families
    from jaxsym.report.summary import markdown

    use_compilation_cache()  # the restricted programs (one per layout of a space) are reused by later runs

    if k < 1 or max_blocks < 1 or starts < 1:
        _fail("--k, --max-blocks and --starts must be positive")
    if families_of not in ("minima", "all"):
        _fail(f"--families must be minima or all, got {families_of!r}")
    if extra < 0:
        _fail(f"--extra must be a non-negative integer, got {extra}")
    if k_max is not None and not (k_max >= k and asymptotic_to > 0):
        _fail(f"--k-max must be at least --k ({k}) and --asymptotic-to positive")
    if k_to is not None:
        if k_to < k or extra or families_of != "minima":
            _fail(f"--k-to must be at least --k ({k}), and a scan takes neither --extra nor --families all")
        _atlas_scan(k, k_to, out, max_blocks=max_blocks, starts=starts, seed=seed,
                    k_max=k_max, asymptotic_to=asymptotic_to)
        return
    df = build(k, max_blocks=max_blocks, starts=starts, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, pd.DataFrame] = {}
    figures: list[str] = []
    cols = [col.ISOTROPY, col.SPACE, col.LOSS, col.INDEX, col.HESS_MIN, col.N_DISTINCT_EIGS, col.KIND]
    cmd = f"jaxsym atlas --k {k} --max-blocks {max_blocks} --starts {starts} --seed {seed}"
    text = (f"# Atlas of critical points, k = d = {k}\n\nCommand: `{cmd}"
            + (f" --k-max {k_max:g} --asymptotic-to {asymptotic_to:g} --families {families_of}" if k_max else "")
            + f"`. {len(df)} distinct critical points (full-space ‖∇F‖ ≤ 1e-10), "
            f"{int((df[col.KIND] == 'spurious').sum())} spurious local minima.\n\n"
            + markdown(df[cols].assign(space=[str(tuple(s)) for s in df[col.SPACE]])) + "\n")
    if k_max is not None:
        kinds = ("global", "spurious") if families_of == "minima" else ("global", "spurious", "saddle")
        fams, curves, objs = families(df, k_max=k_max, asymptotic_to=max(asymptotic_to, k_max), kinds=kinds,
                                      progress=lambda m: console.print(m, soft_wrap=True))
        tables["families.parquet"] = fams
        df = df.assign(family=-1)
        df.loc[df[col.KIND].isin(kinds), col.FAMILY] = fams[col.FAMILY].to_numpy()
        rest = curves[curves[col.K] != k] if len(curves) else curves
        df = pd.concat([df, rest.rename(columns={col.BLOCKS: col.SPACE})], ignore_index=True)
        plot_families(objs, [f"{r.isotropy} ({max(r.loss_start, 0.0):.4f})" for r in fams.itertuples()],
                      out / "families.png")
        figures += ["families.png", "families.pdf"]
        fcols = [col.FAMILY, col.ISOTROPY, col.LOSS_START, col.BIRTH_K, col.DEATH_K, col.END_LOW, col.END_HIGH,
                 col.LIMIT_KIND, col.LIMIT_VALUE, col.LIMIT_ERROR]
        text += (f"\n## Families in continuous k (to k = {asymptotic_to:g})\n\n"
                 "birth_k: where λ_min turns positive as k grows (saddle → minimum), to 1e-8; death_k: where it "
                 "stops being a minimum (λ_min < 0 again, or a fold); end_low/end_high: folds (NaN: the family "
                 "reaches the edge of its domain or the last k traced); limit: the loss as k → ∞, `a/k` "
                 "(value a), `constant`, fitted in powers of k^(−1/2), or `grows` (value: the exponent of k); "
                 "`unclear` where no fit holds.\n\n" + markdown(fams[fcols]) + "\n\n"
                 "![families](families.png)\n")
    if extra:
        from jaxsym.fixedpoints.wide import atlas as wide_atlas

        wide = wide_atlas(k, extra, max_blocks=max_blocks, starts=starts, seed=seed, narrow=df[df[col.K] == k])
        tables["wide.parquet"] = wide
        wcols = [col.SPACE, col.ISOTROPY, col.LOSS, col.INDEX, col.HESS_MIN, col.ZERO_EIGS, col.KIND]
        split, found = wide[wide[col.ORIGIN] == "split"], wide[wide[col.ORIGIN] == "random"]
        text += (f"\n## Students of k = {k} + {extra} neurons (teacher V = I_{k})\n\n"
                 f"Each spurious minimum above with one neuron split into {extra + 1} parallel copies (the same "
                 "function; `split_of`: its loss at k = d), classified by the dense Hessian in the wider space "
                 "(`zero_eigs`: eigenvalues within 1e-6 of 0, the index rule's tolerance):\n\n"
                 + markdown(split[[col.SPLIT_OF, *wcols]].assign(space=[str(tuple(s)) for s in split[col.SPACE]]))
                 + f"\n\nCritical points found in Fix(Δ(S_p)×S_{extra}) from random starts: {len(found)}, of which "
                 f"{int((found[col.KIND] == 'spurious').sum())} spurious local minima:\n\n"
                 + markdown(found[found[col.KIND] != "saddle"][wcols].assign(
                     space=[str(tuple(s)) for s in found[found[col.KIND] != "saddle"][col.SPACE]])) + "\n")
    tables["atlas.parquet"] = df
    write_results(out, dict(command="jaxsym atlas", k=k, max_blocks=max_blocks, starts=starts, seed=seed,
                            k_max=k_max, asymptotic_to=asymptotic_to, families=families_of, extra=extra),
                  tables=tables, texts={"atlas.md": text}, written=figures)
    console.print(f"{int((df[col.K] == k).sum())} distinct critical points at k = {k}; tables in "
                  f"{out / 'atlas.parquet'} and {out / 'atlas.md'}")


def _atlas_scan(k: int, k_to: int, out: Path, *, max_blocks: int, starts: int, seed: int, k_max: float | None,
                asymptotic_to: float) -> None:
    """``jaxsym atlas --k K --k-to K2``: :func:`jaxsym.fixedpoints.atlas.scan`, its families, tables and figure."""
    from jaxsym.fixedpoints.atlas import family_of, scan, scan_families
    from jaxsym.io.results import write_results
    from jaxsym.report.families import plot_families
    from jaxsym.report.summary import markdown

    def say(m: str) -> None:
        console.print(m, soft_wrap=True)

    try:
        df = scan(k, k_to, out / "scan", max_blocks=max_blocks, starts=starts, seed=seed, progress=say)
    except ValueError as e:
        _fail(str(e))
    cmd = f"jaxsym atlas --k {k} --k-to {k_to} --max-blocks {max_blocks} --starts {starts} --seed {seed}"
    per_k = df.groupby(col.K).agg(critical_points=(col.LOSS, "size"), classified=(col.INDEX, "count"),
                                spurious_minima=(col.KIND, lambda s: int((s == "spurious").sum()))).reset_index()
    minima = df[df[col.KIND] == "spurious"]
    per_k["minima"] = [", ".join(f"{r.isotropy} {r.loss:.5f}" for r in minima[minima[col.K] == kk].itertuples())
                       for kk in per_k[col.K]]
    text = (f"# Atlas of critical points, k = d = {k}…{k_to}\n\nCommand: `{cmd}"
            + (f" --k-max {k_max:g} --asymptotic-to {asymptotic_to:g}" if k_max else "") + "`. Per k: distinct "
            "critical points found (full-space ‖∇F‖ ≤ 1e-10), how many are classified (index and isotropy; the "
            "others have a negative eigenvalue in their own fixed-point space, so are saddles), and the spurious "
            "local minima (isotropy, loss).\n\n" + markdown(per_k) + "\n")
    tables: dict[str, Any] = {}
    figures: list[str] = []
    if k_max is not None:
        fams, curves, objs = scan_families(df, k_max=k_max, asymptotic_to=max(asymptotic_to, k_max), progress=say)
        df = df.assign(family=family_of(df, curves))
        tables["families.parquet"] = fams
        if len(curves):
            tables["family_curves.parquet"] = curves
        plot_families(objs, [f"{r.isotropy} (k = {r.k_start}, {max(r.loss_start, 0.0):.4f})"
                             for r in fams.itertuples()], out / "families.png")
        figures += ["families.png", "families.pdf"]
        fcols = [col.FAMILY, col.ISOTROPY, col.K_START, col.LOSS_START, col.BIRTH_K, col.DEATH_K, col.END_LOW,
                 col.END_HIGH, col.LIMIT_KIND, col.LIMIT_VALUE, col.LIMIT_ERROR]
        text += (f"\n## Families of the local minima in continuous k (to k = {asymptotic_to:g})\n\n"
                 + markdown(fams[fcols]) + "\n\n![families](families.png)\n")
    tables["atlas.parquet"] = df
    write_results(out, dict(command="jaxsym atlas", k=k, k_to=k_to, max_blocks=max_blocks, starts=starts,
                            seed=seed, k_max=k_max, asymptotic_to=asymptotic_to),
                  tables=tables, texts={"atlas.md": text}, written=figures)
    say(f"{len(df)} critical points over k = {k}…{k_to}; tables in {out / 'atlas.parquet'} and "
        f"{out / 'atlas.md'}")


def _atlas_start(k: int, isotropy: str | None) -> Any:
    """Rows like minima.parquet's for the critical points of ``Fix(isotropy)`` at k (jaxsym.fixedpoints.atlas), lowest
    Hessian index first, then lowest loss."""
    import re

    from jaxsym.fixedpoints.atlas import critical_points

    blocks = tuple(int(p) for p in re.findall(r"S_?\{?(\d+)", isotropy or ""))
    if not blocks or sum(blocks) != k:
        _fail(f"without a sweep directory, give --isotropy as a product type of k = {k} neurons, e.g. "
              f"D(S{k - 1}xS1); got {isotropy!r}")
    import pandas as pd

    pts = sorted(critical_points(blocks), key=lambda p: (p.index, p.loss))
    return pd.DataFrame([{col.K: k, col.D: k, col.ORBIT: i, col.ISOTROPY: p.isotropy,
                          col.NEURON_ORBITS: p.neuron_orbits, col.LOSS: p.loss, col.W: p.W.ravel()}
                         for i, p in enumerate(pts)])


@app.command()
def coverage(
    sweep_dir: Annotated[Path, typer.Argument(help="a finished sweep's results directory")],
    atlas_dir: Annotated[Path, typer.Argument(help="a `jaxsym atlas --out` directory (k = d, identity target)")],
    level: Annotated[float, typer.Option(help="confidence level of the intervals")] = 0.95,
) -> None:
    """Which atlas minima descent reaches: for every minimum of the atlas, the runs of each k = d cell that ended
    there, their share with an exact interval, and for minima never reached the bound on their basin share; then
    per cell the Good–Turing estimate of the chance that one more run finds an orbit not yet seen."""
    from jaxsym import api
    from jaxsym.report.summary import markdown

    if not 0 < level < 1:
        _fail(f"--level must lie strictly between 0 and 1, got {level}")
    res = api.load(sweep_dir)
    if res.runs.empty:
        _fail(f"{sweep_dir} has no merged runs yet: run or resume the sweep first")
    try:
        table = res.coverage(atlas_dir, level=level)
    except (OSError, ValueError) as e:
        _fail(e)
    if table.empty:
        _fail(f"{sweep_dir} has no cell with d = k of the identity target that the atlas {atlas_dir} covers")
    print(markdown(table.drop(columns=[col.ORBIT]), ".4g"))
    print()
    print(markdown(res.unseen(), ".3g"))


@app.command()
def columns() -> None:
    """Print the columns of runs.parquet and minima.parquet: name, dtype, unit, meaning (Markdown)."""
    from jaxsym.io.columns import columns_markdown

    print(columns_markdown())


@app.command()
def summary(out: Annotated[Path, typer.Argument(help="results directory")]) -> None:
    """Print the summary tables of a finished sweep directory."""

    from jaxsym.report.summary import print_summary

    rd = RunDir(out)
    print_summary(_read_table(rd.runs_table), _read_table(rd.minima_table))


def _fail(e: object) -> NoReturn:
    """Print an error (no traceback, no rich markup in it) and exit with status 2."""
    console.print(f"[red]error:[/red] {escape(str(e))}")
    raise typer.Exit(2)


def _read_table(path: Path) -> Any:
    """A result table, or a clear error naming the file (exit 2)."""
    import pandas as pd

    if not path.is_file():
        _fail(f"{path} does not exist: give the --out directory of a finished sweep (or run `jaxsym report` on "
              f"a partial one)")
    try:
        return pd.read_parquet(path)
    except Exception as e:
        _fail(f"{path} is not a readable table ({type(e).__name__}: {e})")


if __name__ == "__main__":
    app()
