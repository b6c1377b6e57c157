"""Command line: ``jaxsym sweep CONFIG [--out DIR]``, ``jaxsym report DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Map the critical points of shallow ReLU networks and explain them by symmetry.")
console = Console(stderr=True)


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
) -> None:
    """Run a sweep; running it again on the same --out resumes where it stopped."""
    import dataclasses

    from jaxsym import config as cfgmod
    from jaxsym import sweep as sw
    from jaxsym.summary import print_summary

    try:
        cfg = cfgmod.load(config)
        if chunk_size is not None:
            cfg = dataclasses.replace(cfg, chunk_size=chunk_size)
    except cfgmod.ConfigError as e:
        console.print(f"[red]config error:[/red] {e}")
        raise typer.Exit(2) from None
    out = out or Path("results") / cfg.name
    if distributed or coordinator is not None:
        from jaxsym.parallel import initialize_distributed
        initialize_distributed(coordinator, num_processes, process_id)
    try:
        sw.run_sweep(cfg, out, progress=progress)
    except sw.SweepDirError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    import jax
    if jax.process_index() != 0:
        return
    import pandas as pd
    print_summary(pd.read_parquet(out / "runs.parquet"), pd.read_parquet(out / "minima.parquet"))
    console.print(f"tables in {out}/runs.parquet and {out}/minima.parquet")


@app.command()
def report(out: Annotated[Path, typer.Argument(help="results directory")]) -> None:
    """Write DIR/report.md with PNG figures (works on finished, running, interrupted and empty sweeps)."""
    from jaxsym.report import write_report

    path = write_report(out)
    console.print(f"report written to {path}")


@app.command()
def summary(out: Annotated[Path, typer.Argument(help="results directory")]) -> None:
    """Print the summary tables of a finished sweep directory."""
    import pandas as pd

    from jaxsym.summary import print_summary

    print_summary(pd.read_parquet(out / "runs.parquet"), pd.read_parquet(out / "minima.parquet"))


if __name__ == "__main__":
    app()
