"""Sweep files: the documented example works as written; bad input gives a clear error."""

import dataclasses
from pathlib import Path

import pytest

from jaxsym import config
from jaxsym.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
GOOD = {"name": "t", "seed": 0, "runs": 10, "grid": {"d": [4, 5], "k": "d"}}


def test_every_shipped_sweep_file_loads():
    files = sorted((ROOT / "sweeps").glob("*.toml"))
    assert any(f.name == "demo.toml" for f in files)
    for f in files:
        cfg = config.load(f)
        assert cfg.cells()


def test_demo_is_the_design_example():
    cfg = config.load(ROOT / "sweeps" / "demo.toml")
    assert cfg.runs == 1000 and cfg.chunk_size == 256 and cfg.d == (6, 7, 8, 9, 10) and cfg.k == "d"
    assert [(c.d, c.k) for c in cfg.cells()] == [(d, d) for d in range(6, 11)]
    assert cfg.train.optimizer == "sgd" and cfg.train.steps == 10000 and cfg.train.dtype == "float32"


def test_k_list_gives_the_product_and_grid_of_train_settings():
    cfg = config.from_dict({**GOOD, "grid": {"d": [5, 6], "k": [3, 5], "learning_rate": [0.05, 0.1]}})
    cells = cfg.cells()
    assert len(cells) == 8
    assert {c.train.learning_rate for c in cells} == {0.05, 0.1}
    assert cells[1].label == "d5-k3-learning_rate=0.1"


def test_range_syntax():
    cfg = config.from_dict({**GOOD, "grid": {"d": {"start": 6, "stop": 9}, "k": "d"}})
    assert cfg.d == (6, 7, 8, 9)


@pytest.mark.parametrize("change,message", [
    ({"runz": 3}, "unknown top-level key"),
    ({"runs": -1}, "runs must be a positive integer"),
    ({"runs": "many"}, "runs must be a positive integer"),
    ({"seed": 1.5}, "seed must be"),
    ({"grid": {"d": [4], "k": [5]}}, "m <= d"),
    ({"grid": {"d": [4], "k": "d", "target": "random"}}, "grid.target must be one of"),
    ({"grid": {"d": [4], "k": "d", "widht": 3}}, r"unknown key\(s\) in \[grid\]"),
    ({"grid": {"d": "four", "k": "d"}}, "grid.d must be"),
    ({"grid": {"d": [4]}}, "needs both d and k"),
    ({"train": {"optimizer": "lbfgs"}}, "train.optimizer must be one of"),
    ({"train": {"learning_rate": 0}}, "train.learning_rate must be a positive number"),
    ({"train": {"dtype": "float16"}}, "train.dtype must be one of"),
    ({"train": {"stepz": 10}}, r"unknown key\(s\) in \[train\]"),
    ({"grid": {"d": [4], "k": "d", "learning_rate": [0.1, -1.0]}}, "train.learning_rate"),
    ({"certify": {"grad_tol": -1}}, "certify.grad_tol"),
    ({"chunk_size": 0}, "chunk_size must be a positive integer"),
])
def test_bad_configs_name_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        config.from_dict({**GOOD, **change})


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(bad)


def test_fingerprint_ignores_name_and_chunk_size_only():
    a = config.from_dict(GOOD)
    assert a.fingerprint() == config.from_dict({**GOOD, "name": "other", "chunk_size": 7}).fingerprint()
    assert a.fingerprint() != config.from_dict({**GOOD, "seed": 1}).fingerprint()
    assert a.fingerprint() != config.from_dict({**GOOD, "train": {"steps": 5}}).fingerprint()


def test_fingerprint_is_the_canonical_config():
    """A default given explicitly is the same sweep; every changed value of every section changes it, and so
    would a changed default (defaults are hashed by value)."""
    a = config.from_dict(GOOD)
    defaults = dataclasses.asdict(config.TrainConfig())
    explicit = {k: v for k, v in defaults.items() if k in ("momentum", "init_scale", "optimizer", "protocol")}
    assert config.from_dict({**GOOD, "train": {**GOOD.get("train", {}), **explicit}}).fingerprint() == a.fingerprint()
    assert config.from_dict({**GOOD, "certify": dataclasses.asdict(config.CertifyConfig())}).fingerprint() \
        == a.fingerprint()
    changed = [{"train": {**GOOD.get("train", {}), "momentum": 0.5}}, {"certify": {"hess_tol": 1e-5}},
               {"sampled": {}}, {"runs": GOOD["runs"] + 1}]
    prints = {config.from_dict({**GOOD, **c}).fingerprint() for c in changed}
    assert len(prints) == len(changed) and a.fingerprint() not in prints
    # a file that omits grad_tol means the default *value*: were the default 1e-5, the file would mean this
    assert config.from_dict({**GOOD, "train": {**GOOD.get("train", {}), "grad_tol": 1e-5}}).fingerprint() \
        != a.fingerprint()


def test_k_and_m_expressions():
    cfg = config.from_dict({**GOOD, "grid": {"d": [6], "k": ["d", "d+1", "2d"], "m": "d"}})
    assert [(c.k, c.teacher_width) for c in cfg.cells()] == [(6, 6), (7, 6), (12, 6)]
    assert cfg.cells()[1].label == "d6-k7-m6"
    with pytest.raises(ConfigError, match="neither an integer nor an expression"):
        config.from_dict({**GOOD, "grid": {"d": [6], "k": ["d+x"]}})
    with pytest.raises(ConfigError, match="teacher width m <= d"):
        config.from_dict({**GOOD, "grid": {"d": [6], "k": ["d+1"]}})


def test_budget_that_cannot_fit(tmp_path):
    """The memory model (jaxsym.sweep.plan) refuses the config before the sweep writes anything."""
    from jaxsym.sweep.driver import run_sweep
    from jaxsym.sweep.plan import validate

    cfg = config.from_dict({**GOOD, "memory_budget_mb": 1, "grid": {"d": [30], "k": "d"}})
    with pytest.raises(ConfigError, match="memory_budget_mb = 1 cannot fit"):
        validate(cfg)
    with pytest.raises(ConfigError, match="memory_budget_mb = 1 cannot fit"):
        run_sweep(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_manifest_round_trip():
    import json
    for f in sorted((ROOT / "sweeps").glob("*.toml")):
        cfg = config.load(f)
        again = config.from_manifest(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg and again.fingerprint() == cfg.fingerprint()


def test_learning_rate_per_k():
    cfg = config.from_dict({**GOOD, "grid": {"d": [5, 10], "k": "d"}, "train": {"learning_rate": "5/k"}})
    assert [c.train.learning_rate for c in cfg.cells()] == [1.0, 0.5]
    with pytest.raises(ConfigError, match='"c/k"'):
        config.from_dict({**GOOD, "train": {"learning_rate": "5/d"}})


def test_target_grid_axis():
    cfg = config.from_dict({**GOOD, "grid": {"d": [5], "k": [4, 5], "target": ["identity", "orthonormal"]}})
    assert [(c.k, c.target) for c in cfg.cells()] == [(4, "identity"), (4, "orthonormal"), (5, "identity"),
                                                      (5, "orthonormal")]
    assert cfg.cells()[1].label == "d5-k4-orthonormal"
    with pytest.raises(ConfigError, match=r"grid\.target must be one of"):
        config.from_dict({**GOOD, "grid": {"d": [5], "k": "d", "target": ["identity", "random"]}})
    with pytest.raises(ConfigError, match="'orthonormal' needs a teacher width m <= d"):
        config.from_dict({**GOOD, "grid": {"d": [5], "k": ["d+1"], "target": "orthonormal"}})
    cfg = config.from_dict({**GOOD, "grid": {"d": [5], "k": ["d+1"], "target": "gaussian"}})
    assert cfg.cells()[0].teacher_width == 6


@pytest.mark.parametrize("field,value", [("learning_rate", float("inf")), ("init_scale", float("inf")),
                                         ("learning_rate", float("nan"))])
def test_non_finite_numbers_are_refused(field, value):
    with pytest.raises(ConfigError, match=f"train.{field} must be a positive number"):
        config.from_dict({**GOOD, "train": {field: value}})


def test_duplicate_grid_values_are_refused():
    with pytest.raises(ConfigError, match=r"grid.d lists \[4\] more than once"):
        config.from_dict({**GOOD, "grid": {"d": [4, 5, 4], "k": "d"}})


def test_overrides_set_nested_values_as_toml(tmp_path):
    raw = {"name": "x", "seed": 0, "runs": 8, "grid": {"d": [4], "k": "d"}}
    out = config.apply_overrides(raw, ["train.learning_rate=0.05", "grid.d=[4, 5]", "name=quick", "seed=3"])
    assert out["train"]["learning_rate"] == 0.05 and out["grid"]["d"] == [4, 5]
    assert out["name"] == "quick" and out["seed"] == 3 and raw["grid"]["d"] == [4]  # the input is not changed
    cfg = config.from_dict(out)
    assert cfg.train.learning_rate == 0.05 and cfg.d == (4, 5)
    for bad in ("noequals", "=3", "a..b=1"):
        with pytest.raises(ConfigError, match="key=value"):
            config.apply_overrides(raw, [bad])
    with pytest.raises(ConfigError, match="learning_rate"):
        config.from_dict(config.apply_overrides(raw, ["train.learning_rate=-1"]))


@pytest.mark.parametrize("sweep, fingerprint", [
    # computed by jaxsym 0.1 as landed at commit a0dc743: `git archive a0dc743 | tar -x -C /tmp/old && cd /tmp/old
    # && python -c "from jaxsym import config; print(config.load('sweeps/demo.toml').fingerprint())"`
    ("demo.toml", "1ffed392596b14ec"), ("safran_shamir.toml", "10d84a1bc1e4c052"), ("tiny.toml", "dfe928d589155394"),
])
def test_fingerprint_is_the_one_jaxsym_0_1_wrote(sweep, fingerprint):
    """Settings added since 0.1 (Adam's betas, AdamW's decay) at their old behaviour leave the fingerprint as it
    was, so 0.1's directories resume; set to anything else, they change it."""
    cfg = config.load(ROOT / "sweeps" / sweep)
    assert cfg.fingerprint() == fingerprint
    for name, value in (("b1", 0.5), ("weight_decay", 0.0)):
        assert dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **{name: value})).fingerprint() \
            != fingerprint


def test_adam_hyperparameters_reach_the_optimizer():
    import jax.numpy as jnp
    import optax

    from jaxsym.engine.descent import make_optimizer

    g = jnp.array([1.0, -2.0])
    for cfg, want in ((config.TrainConfig(optimizer="adam", b1=0.5, b2=0.9), optax.adam(0.1, b1=0.5, b2=0.9)),
                      (config.TrainConfig(optimizer="adamw", weight_decay=0.3), optax.adamw(0.1, weight_decay=0.3))):
        opt = make_optimizer(cfg)
        got, _ = opt.update(g, opt.init(g), g)
        ref, _ = want.update(g, want.init(g), g)
        assert jnp.allclose(got, ref)
    default, _ = make_optimizer(config.TrainConfig(optimizer="adamw")).update(g, optax.adamw(0.1).init(g), g)
    assert not jnp.allclose(default, optax.adamw(0.1, weight_decay=0.3).update(g, optax.adamw(0.1).init(g), g)[0])
    with pytest.raises(ConfigError, match="b1"):
        config.TrainConfig(optimizer="adam", b1=1.5)
