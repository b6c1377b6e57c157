"""The documented columns (jaxsym.io.columns, README "Outputs") are the columns the pipelines write."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TINY

from jaxsym import config
from jaxsym.io import columns
from jaxsym.io.columns import ATLAS, FAMILIES, FAMILY_CURVE, MINIMA, RUNS, SPECTRA, WIDE, columns_markdown
from jaxsym.sweep.driver import run_sweep

ROOT = Path(__file__).resolve().parents[1]
TABLES = (RUNS, MINIMA, ATLAS, FAMILIES, WIDE, FAMILY_CURVE, SPECTRA)
DECLARED = {c.name for table in TABLES for c in table} | {columns.LOCAL_ORBIT, columns.CHUNK}


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


def test_every_declared_column_has_its_constant_and_every_constant_is_declared():
    declared = DECLARED
    constants = {v for n, v in vars(columns).items() if n.isupper() and isinstance(v, str)}
    assert declared == constants, f"declared only: {declared - constants}; constant only: {constants - declared}"
    for name, value in vars(columns).items():
        if name.isupper() and isinstance(value, str):
            assert name == value.upper(), f"{name} names the column {value!r}: the constant is the name in capitals"


def test_minima_entries_given_by_name_alone_are_declared_as_in_runs():
    runs = {c.name: c for c in RUNS}
    for c in MINIMA:
        if c.name in ("d", "k", "cell", "m", "target"):
            assert c == runs[c.name]


# Strings in the package that spell a column's name but are not one (a config key, a program name…).
NOT_COLUMNS = {
    ("cli", "cell"): "a header of `jaxsym plan`'s table",
    ("cli", "count"): "pandas' count aggregation",
    ("certify.exact", "loss"): "a compiled program's name",
    ("symmetry.group", "W"): "an argument's name in an error message",
    ("symmetry.naming", "x"): "the ASCII form of ×",
    ("report.figures", "x"): "matplotlib's cross marker",
    ("fixedpoints.space", "extra"): "an attribute's name",
}


def test_the_package_names_columns_by_their_constants():
    """No bare string spells a column name outside jaxsym.io.columns (config keys, __all__ and f-string text
    aside): renaming a column is a change in columns.toml and its constant."""
    names = DECLARED
    pkg = ROOT / "jaxsym"
    found: dict[tuple[str, str], int] = {}
    for path in pkg.rglob("*.py"):
        module = ".".join(path.relative_to(pkg).with_suffix("").parts)
        if module in ("io.columns", "config", "__init__"):
            continue
        tree = ast.parse(path.read_text())
        in_fstring = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
                    and id(node) not in in_fstring):
                found[(module, node.value)] = found.get((module, node.value), 0) + 1
    unexpected = {key: n for key, n in found.items() if key not in NOT_COLUMNS or n > 1}
    assert not unexpected, f"bare column names (use jaxsym.io.columns' constants): {unexpected}"


def test_the_atlas_writes_the_documented_columns():
    from jaxsym.fixedpoints.atlas import atlas

    df = atlas(4, starts=4)
    documented = {c.name for c in ATLAS if c.where in ("all", "atlas")} - {columns.FAMILY}
    assert set(df.columns) == documented
