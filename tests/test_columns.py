"""The documented columns (jaxsym.io.columns, README "Outputs") are the columns the pipelines write."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TINY

from jaxsym import config
from jaxsym.io.columns import MINIMA, RUNS, columns_markdown
from jaxsym.sweep.driver import run_sweep

ROOT = Path(__file__).resolve().parents[1]


def doc_type(t: pa.DataType) -> str:
    """The documented name of a Parquet column type."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{doc_type(t.value_type)}>"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return {"double": "float64", "bool": "bool"}.get(str(t), str(t))


def check(path: Path, documented: tuple, pipeline: str, axes: set[str], optional: set[str] = frozenset()) -> None:
    schema = pq.read_schema(path)
    doc = {c.name: c for c in documented}
    written = {f.name: doc_type(f.type) for f in schema}
    for name, dtype in written.items():
        if name in axes:
            continue
        assert name in doc, f"{path.name}: column {name!r} is written but not documented"
        assert doc[name].where in ("all", pipeline, "option"), f"{name} documented for {doc[name].where}"
        assert dtype == doc[name].dtype, f"{path.name}: {name} is {dtype}, documented {doc[name].dtype}"
    expected = {c.name for c in documented if c.where in ("all", pipeline)} - set(optional)
    assert expected <= set(written), f"{path.name}: documented but not written: {sorted(expected - set(written))}"
    assert axes <= set(written)


def test_readme_shows_the_generated_columns_table():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- columns:begin -->\n(.*)\n<!-- columns:end -->", text, re.S)
    assert block is not None and block.group(1) == columns_markdown()


def test_closed_form_tables_have_the_documented_columns(tmp_path):
    raw = {**TINY, "runs": 8, "grid": {"d": [4], "k": "d", "learning_rate": [0.1, 0.2]}}
    run_sweep(config.from_dict(raw), tmp_path, progress=False)
    check(tmp_path / "runs.parquet", RUNS, "exact", {"learning_rate"}, {"W"})
    check(tmp_path / "minima.parquet", MINIMA, "exact", {"learning_rate"})


@pytest.mark.parametrize("name", ["tanh"])
def test_sampled_tables_have_the_documented_columns(tmp_path, name):
    cfg = config.load(ROOT / "sweeps" / f"{name}.toml").smoke()
    run_sweep(cfg, tmp_path, progress=False)
    axes = {n for n, _ in cfg.train_grid}
    check(tmp_path / "runs.parquet", RUNS, "sampled", axes)
    check(tmp_path / "minima.parquet", MINIMA, "sampled", axes)
