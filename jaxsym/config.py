"""Typed, validated sweep configuration read from TOML.

A sweep file looks like (``sweeps/demo.toml``)::

    name = "demo"
    seed = 0
    runs = 1000                 # runs per grid cell
    chunk_size = 256            # optional; derived from a memory budget when absent
    [grid]
    d = [6, 7, 8, 9, 10]
    k = "d"                     # a list gives the product with d; "d" pairs k = d
    target = "identity"         # V = I (k = d) or [I 0] (k < d)
    [train]
    optimizer = "sgd"
    learning_rate = 0.1
    steps = 10000
    grad_tol = 1e-6
    dtype = "float32"
    init_scale = 1.0            # W_ij ~ N(0, init_scale² / d)
    [certify]                   # optional, the defaults shown in CertifyConfig

Any scalar ``[train]`` setting may also appear in ``[grid]`` as a list; the grid is the product of all
lists. Every error names the offending field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaxsym.landscape.activations import ACTIVATIONS
from jaxsym.landscape.distributions import DISTRIBUTION_NAMES
from jaxsym.landscape.model import TARGETS
from jaxsym.numerics import optimizers

# the registries of names are those of the modules that implement them
OPTIMIZERS = optimizers.NAMES
DTYPES = ("float32", "float64")
PROTOCOLS = ("fast", "full")
ACTIVATION_NAMES = tuple(ACTIVATIONS)
DISTRIBUTIONS = DISTRIBUTION_NAMES


_LR_PER_K = re.compile(r"^\s*(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*/\s*k\s*$")


def resolve_learning_rate(lr: float | str, k: int) -> float:
    """A learning rate for a cell with ``k`` neurons: numbers as they are, ``"c/k"`` as ``c / k``."""
    if isinstance(lr, str):
        return float(_LR_PER_K.match(lr)[1]) / k
    return float(lr)


class ConfigError(ValueError):
    """A sweep file that cannot be run; the message names the field and the allowed values."""


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the bulk (float32) training run.

    Attributes:
      optimizer: one of :data:`OPTIMIZERS` (optax).
      learning_rate: step size (> 0), or ``"c/k"`` for ``c/k`` in each cell (the published ``"5/k"``).
      momentum: momentum for ``momentum``/``nesterov`` (default 0.9).
      b1, b2: Adam's moment decay rates (``adam``, ``adamw``; optax's defaults 0.9, 0.999).
      weight_decay: AdamW's decoupled weight decay (optax's default 1e-4).
      steps: step budget per run.
      grad_tol: per-run early stop when ‖∇F‖ ≤ grad_tol (in the training dtype).
      dtype: ``float32`` or ``float64``.
      init_scale: ``W_ij ~ N(0, init_scale² / d)``.
      activation: σ of student and teacher (:data:`jaxsym.landscape.activations.ACTIVATIONS`).
      input_corr: ρ of exchangeable Gaussian inputs, ``Σ = (1−ρ) I + ρ 11ᵀ`` (0: isotropic).
      protocol: ``"fast"`` (default): compacting slots, and each run handed to the float64 certificate as soon
        as the hand-off test certifies where continued descent would end (:mod:`jaxsym.engine.compact`); ``"full"``:
        every run descends until ``grad_tol`` or its budget, all runs of a chunk in one batch (for comparison).
      handoff_from: the fast protocol tries the hand-off when ‖∇F‖ first falls below this, then below each
        tenth of it down to ``grad_tol``.
    """

    optimizer: str = "sgd"
    learning_rate: float | str = 0.1
    momentum: float = 0.9
    b1: float = 0.9
    b2: float = 0.999
    weight_decay: float = 1e-4
    steps: int = 10000
    grad_tol: float = 1e-6
    dtype: str = "float32"
    init_scale: float = 1.0
    activation: str = "relu"
    input_corr: float = 0.0
    protocol: str = "fast"
    handoff_from: float = 1e-3

    def __post_init__(self) -> None:
        _choice("train.optimizer", self.optimizer, OPTIMIZERS)
        _choice("train.protocol", self.protocol, PROTOCOLS)
        _positive("train.handoff_from", self.handoff_from)
        _choice("train.activation", self.activation, ACTIVATION_NAMES)
        if isinstance(self.input_corr, bool) or not isinstance(self.input_corr, (int, float)) \
                or not -1 < self.input_corr < 1:
            raise ConfigError(f"train.input_corr must be a number in (-1, 1), got {self.input_corr!r}")
        _choice("train.dtype", self.dtype, DTYPES)
        if isinstance(self.learning_rate, str):
            if _LR_PER_K.match(self.learning_rate) is None or float(_LR_PER_K.match(self.learning_rate)[1]) <= 0:
                raise ConfigError(f'train.learning_rate must be a positive number or "c/k" (e.g. "5/k"), '
                                  f"got {self.learning_rate!r}")
        else:
            _positive("train.learning_rate", self.learning_rate)
        _positive("train.init_scale", self.init_scale)
        _positive("train.steps", self.steps, integer=True)
        if self.steps > MAX_STEPS:
            raise ConfigError(f"train.steps must be at most {MAX_STEPS:,} (step counters are 32-bit), got "
                              f"{self.steps:,}")
        if not _is_real(self.momentum) or not 0 <= self.momentum < 1:
            raise ConfigError(f"train.momentum must be a number in [0, 1), got {self.momentum!r}")
        for name in ("b1", "b2"):
            v = getattr(self, name)
            if not _is_real(v) or not 0 <= v < 1:
                raise ConfigError(f"train.{name} must be a number in [0, 1), got {v!r}")
        if not _is_real(self.weight_decay) or self.weight_decay < 0:
            raise ConfigError(f"train.weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not _is_real(self.grad_tol) or not self.grad_tol >= 0:
            raise ConfigError(f"train.grad_tol must be >= 0, got {self.grad_tol!r}")


@dataclass(frozen=True)
class CertifyConfig:
    """Float64 polish and certificate thresholds (stored next to the results).

    Attributes:
      polish_from: runs whose training ‖∇F‖ is above this are ``not_converged`` without a polish.
      polish_iters: Levenberg–Marquardt (Newton) iterations at most.
      loss_tol: τ_L, ``global`` when F ≤ τ_L.
      grad_tol: τ_g, a critical point when ‖∇F‖ ≤ τ_g after the polish.
      hess_tol: τ_H, ``spurious`` when λ_min ≥ τ_H, ``saddle`` when λ_min ≤ −τ_H, else ``degenerate``.
      cluster_tol: two points are the same modulo the group when their entries agree to this.
    """

    polish_from: float = 1e-3
    polish_iters: int = 40
    loss_tol: float = 1e-8
    grad_tol: float = 1e-10
    hess_tol: float = 1e-6
    cluster_tol: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("polish_from", "loss_tol", "grad_tol", "hess_tol", "cluster_tol"):
            _positive(f"certify.{name}", getattr(self, name))
        _positive("certify.polish_iters", self.polish_iters, integer=True)


@dataclass(frozen=True)
class SampledConfig:
    """A sampled objective (``[sampled]``): any input law, trainable output layer, deeper networks.

    Training uses ``[train]`` (optimizer, learning_rate, momentum, steps, init_scale, activation); its
    ``grad_tol``/``dtype``/``input_corr`` do not apply. The step size is constant for the first ``decay_from``
    of the steps, then falls linearly to ``final_lr_fraction`` of itself; the result of a run is the average of
    its iterates over the last ``1 − average_from`` of the steps (Polyak–Ruppert), which removes most of SGD's
    noise around a minimum.

    Attributes:
      hidden_layers: L (1: the papers' two-layer student).   train_output: train ``a`` (else ``a = 𝟙``).
      distribution: a name in :data:`DISTRIBUTIONS`; ``shift`` is the mixture's mean per coordinate;
        ``sampler`` names a user function ``"package.module:function"`` (distribution ``"user"``).
      student, teacher: a user's flax networks (:mod:`jaxsym.landscape.flax_students`), each named
        ``"package.module:factory"``: ``student(d, k, rngs) -> nnx.Module`` replaces the built-in network
        (``hidden_layers`` and ``train_output`` are then read from the module), ``teacher(d, m) -> nnx.Module``
        the identity teacher.
      mode: ``"online"`` (fresh samples every step) or ``"fixed"`` (``n_train`` samples drawn once per cell).
      batch_size: samples per step.
      eval_samples, eval_blocks: held-out sample for each run's loss and gradient (standard errors from
        ``eval_blocks`` batch means).
      hess_samples, hess_blocks, fd_step: the Hessian of a distinct point by central differences of the
        held-out gradient (step ``fd_step``), with a jackknife error over ``hess_blocks`` blocks.
      grad_tol: a run is stationary when ‖∇F‖ ≤ grad_tol + 2·(its standard error). Where the closed-form
        certificate applies (:mod:`jaxsym.sweep.closed_form`), runs are polished from ‖∇F‖ ≤ max(certify.polish_from,
        10·grad_tol).
      loss_tol: ``global`` when F ≤ loss_tol.   hess_tol: ``spurious`` when λ_min ≥ max(hess_tol, 2·se).
      cluster_tol: points equal modulo the group when their entries agree to this (after rescaling).
      eig_tol: eigenvalues closer than this are one distinct eigenvalue.
    """

    hidden_layers: int = 1
    train_output: bool = False
    distribution: str = "gaussian"
    shift: float = 0.5
    sampler: str | None = None
    student: str | None = None
    teacher: str | None = None
    mode: str = "online"
    n_train: int = 4096
    batch_size: int = 128
    decay_from: float = 0.5
    final_lr_fraction: float = 0.02
    average_from: float = 0.75
    eval_samples: int = 16384
    eval_blocks: int = 16
    hess_samples: int = 65536
    hess_blocks: int = 8
    fd_step: float = 0.02
    grad_tol: float = 2e-3
    loss_tol: float = 1e-3
    hess_tol: float = 1e-3
    cluster_tol: float = 0.05
    eig_tol: float = 0.02

    def __post_init__(self) -> None:
        _positive("sampled.hidden_layers", self.hidden_layers, integer=True)
        if not isinstance(self.train_output, bool):
            raise ConfigError(f"sampled.train_output must be true or false, got {self.train_output!r}")
        _choice("sampled.distribution", self.distribution, DISTRIBUTIONS)
        _choice("sampled.mode", self.mode, ("online", "fixed"))
        if self.distribution == "user" and not (isinstance(self.sampler, str) and ":" in self.sampler):
            raise ConfigError("sampled.distribution = 'user' needs sampled.sampler = 'package.module:function'")
        for name in ("student", "teacher"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, str) and ":" in v):
                raise ConfigError(f"sampled.{name} must name a factory 'package.module:factory', got {v!r}")
        if isinstance(self.shift, bool) or not isinstance(self.shift, (int, float)) or not -1 < self.shift < 1:
            raise ConfigError(f"sampled.shift must be a number in (-1, 1), got {self.shift!r}")
        for name in ("n_train", "batch_size", "eval_samples", "eval_blocks", "hess_samples", "hess_blocks"):
            _positive(f"sampled.{name}", getattr(self, name), integer=True)
        for name in ("fd_step", "grad_tol", "loss_tol", "hess_tol", "cluster_tol", "eig_tol", "final_lr_fraction"):
            _positive(f"sampled.{name}", getattr(self, name))
        for name in ("decay_from", "average_from"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ConfigError(f"sampled.{name} must be a fraction in [0, 1), got {v!r}")
        for n, b in (("eval", self.eval_blocks), ("hess", self.hess_blocks)):
            if b < 2 or getattr(self, f"{n}_samples") % b:
                raise ConfigError(f"sampled.{n}_blocks must be >= 2 and divide sampled.{n}_samples")

    @property
    def user_code(self) -> list[str]:
        """The user functions this section names (sampler, student, teacher): a merge imports them."""
        return [v for v in (self.sampler if self.distribution == "user" else None, self.student, self.teacher) if v]


@dataclass(frozen=True)
class Cell:
    """One grid point: sizes, target and the training settings used there."""

    d: int
    k: int
    target: str
    train: TrainConfig
    overrides: tuple[tuple[str, Any], ...] = ()
    m: int | None = None

    @property
    def teacher_width(self) -> int:
        """``m``, the number of teacher neurons (default k)."""
        return self.k if self.m is None else self.m

    @property
    def label(self) -> str:
        """A file-name-safe name, e.g. ``d6-k6``, ``d6-k7-m6`` or ``d6-k6-learning_rate=0.05``."""
        extra = "".join(f"-{n}={v}" for n, v in self.overrides)
        teacher = "" if self.m is None else f"-m{self.m}"
        target = "" if self.target == "identity" else f"-{self.target}"
        return f"d{self.d}-k{self.k}{teacher}{target}{extra}"


@dataclass(frozen=True)
class SweepConfig:
    """A whole sweep: a grid of cells, runs per cell, seed and settings."""

    name: str
    seed: int
    runs: int
    d: tuple[int, ...]
    k: tuple[int | str, ...] | str
    target: str | tuple[str, ...] = "identity"
    m: tuple[int | str, ...] | str | None = None
    chunk_size: int | None = None
    memory_budget_mb: int = 1024
    segment_steps: int | None = None
    checkpoint_interval_s: float = 60.0
    save_weights: bool = False
    slots: int | None = None
    workers: int | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    certify: CertifyConfig = field(default_factory=CertifyConfig)
    train_grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    sampled: SampledConfig | None = None

    def __post_init__(self) -> None:
        _positive("runs", self.runs, integer=True)
        if self.runs > MAX_RUNS:
            raise ConfigError(f"runs must be at most {MAX_RUNS:,} = 2**32 per cell (a run's key is fold_in of its "
                              f"32-bit index), got {self.runs:,}; split a larger sweep over seeds")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.chunk_size is not None:
            _positive("chunk_size", self.chunk_size, integer=True)
        _positive("memory_budget_mb", self.memory_budget_mb, integer=True)
        if self.segment_steps is not None:
            _positive("segment_steps", self.segment_steps, integer=True)
        if self.slots is not None:
            _positive("slots", self.slots, integer=True)
        if self.workers is not None:
            _positive("workers", self.workers, integer=True)
        _positive("checkpoint_interval_s", self.checkpoint_interval_s)
        if not isinstance(self.save_weights, bool):
            raise ConfigError(f"save_weights must be true or false, got {self.save_weights!r}")
        for target in self.targets:
            _choice("grid.target", target, TARGETS)
        if not self.d:
            raise ConfigError("grid.d must list at least one input dimension")
        for d in self.d:
            _positive("grid.d", d, integer=True)
        if self.k != "d" and (isinstance(self.k, str) or not self.k):
            raise ConfigError(f'grid.k must be "d" or a non-empty list, got {self.k!r}')
        for cell in self.cells():
            _positive("grid.k", cell.k, integer=True)
            _positive("grid.m", cell.teacher_width, integer=True)
            if cell.target in ("identity", "orthonormal") and cell.teacher_width > cell.d:
                raise ConfigError(
                    f"grid: target {cell.target!r} needs a teacher width m <= d; the cell d={cell.d}, "
                    f"k={cell.k}, m={cell.teacher_width} is impossible. Use smaller k, or set m (e.g. m = \"d\" "
                    f"for students wider than the target)."
                )
            if cell.train.input_corr <= -1 / max(cell.d - 1, 1):
                raise ConfigError(f"train.input_corr = {cell.train.input_corr} makes the input covariance of d = "
                                  f"{cell.d} singular; it must exceed -1/(d-1)")

        if self.sampled is not None:
            if self.targets != ("identity",):
                raise ConfigError("[sampled] sweeps use the identity teacher; grid.target must be 'identity'")
            if any(c.train.input_corr != 0.0 for c in self.cells()):
                raise ConfigError("[sampled] sweeps take their input law from sampled.distribution; "
                                  "train.input_corr must be 0")

    def cells(self) -> tuple[Cell, ...]:
        """All grid cells, in a fixed order (d, then k, then the train grid); computed once per config."""
        return _cells(self)

    def _build_cells(self) -> tuple[Cell, ...]:
        names = [n for n, _ in self.train_grid]
        combos = list(itertools.product(*(vals for _, vals in self.train_grid))) or [()]
        out = []
        for d in self.d:
            for k_expr in (("d",) if self.k == "d" else self.k):
                k = size_expr(k_expr, d=d)
                m_exprs = (None,) if self.m is None else (("d",) if self.m == "d" else self.m)
                for m_expr in m_exprs:
                    m = None if m_expr is None else size_expr(m_expr, d=d, k=k)
                    for target in self.targets:
                        for combo in combos:
                            train = dataclasses.replace(self.train, **dict(zip(names, combo)))
                            train = dataclasses.replace(
                                train, learning_rate=resolve_learning_rate(train.learning_rate, k))
                            out.append(Cell(d=d, k=k, target=target, train=train,
                                            overrides=tuple(zip(names, combo)), m=m))
        return tuple(out)

    @property
    def targets(self) -> tuple[str, ...]:
        """The target types of the grid (``grid.target`` may be one name or a list)."""
        return (self.target,) if isinstance(self.target, str) else tuple(self.target)

    def smoke(self, runs: int = 8, steps: int = 300) -> SweepConfig:
        """A seconds-long variant of this sweep: the smallest ``d``, few runs and steps (for tests, demos)."""
        sampled = self.sampled and dataclasses.replace(self.sampled, eval_samples=2048, eval_blocks=16,
                                                       hess_samples=4096, hess_blocks=8, n_train=512)
        return dataclasses.replace(self, name=f"{self.name}-smoke", runs=runs, chunk_size=min(runs, 8),
                                   d=(min(self.d),), train=dataclasses.replace(self.train, steps=steps),
                                   sampled=sampled)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of everything that changes results: the canonical config, defaults included by value (not the
        name, chunking, slots, workers or checkpoint cadence, which do not change results).

        A setting added after :data:`FINGERPRINT_SCHEMA` 1 (jaxsym 0.1) is listed in :data:`ADDED_SETTINGS`
        with the value that reproduces the behaviour before it existed, and left out of the hash while it has
        that value: an upgraded jaxsym then resumes an older directory of the same effective config, while a
        changed default changes every fingerprint that depends on it. Forgetting to list a new setting only
        makes older directories refuse (never mix) results; a change of the canonical form itself bumps
        :data:`FINGERPRINT_SCHEMA`, which enters the hash from 2 on."""
        data = self.to_dict()
        for key in NOT_RESULTS:
            data.pop(key)
        for path, neutral in ADDED_SETTINGS.items():
            section, name = path.split(".")
            if data[section] is not None and data[section].get(name) == neutral:
                data[section].pop(name)
        if FINGERPRINT_SCHEMA != 1:
            data["fingerprint_schema"] = FINGERPRINT_SCHEMA
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


FINGERPRINT_SCHEMA = 1  # the canonical form of jaxsym 0.1; bump when it changes (not when a setting is added)
ADDED_SETTINGS: dict[str, Any] = {  # settings added since schema 1, with the value that keeps the old behaviour
    "train.b1": 0.9, "train.b2": 0.999, "train.weight_decay": 1e-4,
    "sampled.student": None, "sampled.teacher": None,
}
NOT_RESULTS = ("name", "chunk_size", "memory_budget_mb", "segment_steps", "checkpoint_interval_s", "slots",
               "workers")


_SIZE = re.compile(r"^\s*(?:(\d+)\s*\*?\s*)?([dk])\s*(?:([+-])\s*(\d+))?\s*$")


def size_expr(value: int | str, **names: int) -> int:
    """A size given as an integer or an expression ``"d"``, ``"d+1"``, ``"2d"``, ``"k-1"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value))
    if not m or m.group(2) not in names:
        allowed = ", ".join(f'"{n}", "{n}+1", "2{n}"' for n in names)
        raise ConfigError(f"size {value!r} is neither an integer nor an expression like {allowed}")
    coef = int(m.group(1) or 1)
    off = int(m.group(4) or 0) * (-1 if m.group(3) == "-" else 1)
    return coef * names[m.group(2)] + off


@functools.lru_cache(maxsize=64)
def _cells(cfg: SweepConfig) -> tuple[Cell, ...]:
    return cfg._build_cells()


def _is_real(value: Any) -> bool:
    """A finite int or float (not a bool, a string or NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def _positive(name: str, value: Any, *, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0 or not math.isfinite(value):
        what = "a positive integer" if integer else "a positive number"
        finite = " (it must be finite)" if isinstance(value, float) and not math.isfinite(value) else ""
        raise ConfigError(f"{name} must be {what}, got {value!r}{finite}")


_TOP_KEYS = {"name", "seed", "runs", "chunk_size", "memory_budget_mb", "segment_steps", "checkpoint_interval_s",
             "save_weights", "slots", "workers", "grid", "train", "certify", "sampled"}
_GRID_KEYS = {"d", "k", "m", "target"}


def _section(raw: dict[str, Any], name: str, cls: type) -> dict[str, Any]:
    sec = raw.get(name, {})
    if not isinstance(sec, dict):
        raise ConfigError(f"[{name}] must be a table")
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = set(sec) - allowed
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {sorted(unknown)}; allowed: {sorted(allowed)}")
    return dict(sec)


MAX_AXIS_VALUES = 10_000  # values per grid axis
MAX_STEPS = 2**31 - 1     # step counters are int32
MAX_RUNS = 2**32          # runs per cell: run indices are uint32 (jaxsym.engine.descent.run_key)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]{0,127}$")


def _as_int_list(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, dict) and set(value) <= {"start", "stop", "step"}:  # a range
        start, stop, step = value.get("start"), value.get("stop"), value.get("step", 1)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop, step)):
            raise ConfigError(f"grid.{name} range needs integer start and stop (inclusive) and an integer step; "
                              f"got {value!r}")
        if step <= 0:
            raise ConfigError(f"grid.{name} range step must be a positive integer, got {step}")
        n = len(range(start, stop + 1, step))
        if n > MAX_AXIS_VALUES:
            raise ConfigError(f"grid.{name} range has {n:,} values; at most {MAX_AXIS_VALUES:,} per axis "
                              f"(every value is a cell of `runs` runs)")
        return tuple(range(start, stop + 1, step))
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"grid.{name} must be an integer, a list of integers or {{start, stop, step}}; "
                          f"got {value!r}")
    dup = sorted({v for v in value if value.count(v) > 1})
    if dup:
        raise ConfigError(f"grid.{name} lists {dup} more than once (every run would be trained twice)")
    return tuple(value)


def _as_size_list(name: str, value: Any) -> tuple[int | str, ...]:
    """Integers or size expressions (``"d+1"``), or an integer range table."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        for v in value:
            size_expr(v, d=1, k=1)  # syntax check
        return tuple(value)
    if isinstance(value, list):
        for v in value:
            if isinstance(v, str):
                size_expr(v, d=1, k=1)
            elif isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"grid.{name} entries must be integers or expressions like \"d+1\"; got {v!r}")
        return tuple(value)
    return _as_int_list(name, value)


def _as_targets(value: Any) -> str | tuple[str, ...]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"grid.target must be a name or a non-empty list of names from {TARGETS}; got {value!r}")


def from_dict(raw: dict[str, Any]) -> SweepConfig:
    """Build and validate a :class:`SweepConfig` from parsed TOML."""
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    for key in ("name", "seed", "runs", "grid"):
        if key not in raw:
            raise ConfigError(f"missing required key {key!r}")
    grid = raw["grid"]
    if not isinstance(grid, dict):
        raise ConfigError("[grid] must be a table")
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(grid) - _GRID_KEYS - train_fields
    if unknown:
        raise ConfigError(f"unknown key(s) in [grid]: {sorted(unknown)}; allowed: d, k, target and the "
                          f"[train] settings {sorted(train_fields)}")
    if "d" not in grid or "k" not in grid:
        raise ConfigError("[grid] needs both d and k")
    k = grid["k"] if grid["k"] == "d" else _as_size_list("k", grid["k"])
    m = grid.get("m")
    if m is not None and m != "d":
        m = _as_size_list("m", m)
    train = _section(raw, "train", TrainConfig)
    train_grid = []
    for name in sorted(set(grid) & train_fields):
        values = grid[name] if isinstance(grid[name], list) else [grid[name]]
        if not values:
            raise ConfigError(f"grid.{name} must not be empty")
        train_grid.append((name, tuple(values)))
    try:
        train_cfg = TrainConfig(**train)
        for name, values in train_grid:  # validate every value of every grid axis
            for v in values:
                dataclasses.replace(train_cfg, **{name: v})
        certify_cfg = CertifyConfig(**_section(raw, "certify", CertifyConfig))
        sampled_cfg = SampledConfig(**_section(raw, "sampled", SampledConfig)) if "sampled" in raw else None
    except TypeError as e:
        raise ConfigError(str(e)) from None
    if not isinstance(raw["name"], str) or not NAME_RE.match(raw["name"]):
        raise ConfigError(f"name must be a name (letters, digits and . _ + = -, starting with a letter or digit, "
                          f"at most 128 characters), not a path; got {raw['name']!r}. The results go to "
                          f"results/<name> unless --out says otherwise.")
    return SweepConfig(
        name=raw["name"], seed=raw["seed"], runs=raw["runs"], d=_as_int_list("d", grid["d"]), k=k, m=m,
        target=_as_targets(grid.get("target", "identity")), chunk_size=raw.get("chunk_size"),
        memory_budget_mb=raw.get("memory_budget_mb", 1024), segment_steps=raw.get("segment_steps"),
        checkpoint_interval_s=raw.get("checkpoint_interval_s", 60.0), save_weights=raw.get("save_weights", False),
        slots=raw.get("slots"), workers=raw.get("workers"),
        train=train_cfg, certify=certify_cfg,
        train_grid=tuple(train_grid), sampled=sampled_cfg,
    )


def from_manifest(data: dict[str, Any]) -> SweepConfig:
    """Rebuild a :class:`SweepConfig` from :meth:`SweepConfig.to_dict` output (e.g. ``DIR/sweep.json``)."""
    data = dict(data)
    data["train"] = TrainConfig(**data["train"])
    data["certify"] = CertifyConfig(**data["certify"])
    if data.get("sampled") is not None:
        data["sampled"] = SampledConfig(**data["sampled"])
    data["d"] = tuple(data["d"])
    for key in ("k", "m"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    data["train_grid"] = tuple((n, tuple(v)) for n, v in data.get("train_grid", ()))
    if isinstance(data.get("target"), list):
        data["target"] = tuple(data["target"])
    return SweepConfig(**data)


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``raw`` with ``key=value`` settings applied, e.g. ``train.learning_rate=0.05``, ``grid.d=[4, 5]``,
    ``name=quick``: the value is read as a TOML value (a bare word is a string)."""
    out = json.loads(json.dumps(raw))
    for item in overrides:
        key, sep, text = item.partition("=")
        path = key.strip().split(".")
        if not sep or not all(path):
            raise ConfigError(f"--set takes key=value (e.g. train.learning_rate=0.05), got {item!r}")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part} is not a section")
        node[path[-1]] = value
    return out


SHIPPED = Path(__file__).parent / "sweeps"  # the sweep files installed with jaxsym (sweeps/ in a checkout)


def shipped() -> list[str]:
    """Names of the sweep files installed with jaxsym (``demo``, ``safran_shamir``, …)."""
    return sorted(p.stem for p in SHIPPED.glob("*.toml"))


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """Read and validate a sweep TOML file, with ``key=value`` overrides (:func:`apply_overrides`). A bare name
    that is not a file, such as ``demo``, is the sweep file of that name installed with jaxsym (:func:`shipped`)."""
    path = Path(path)
    if not path.exists() and path.parent == Path(".") and (SHIPPED / f"{path.stem}.toml").is_file():
        path = SHIPPED / f"{path.stem}.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sweep file {path} does not exist (installed sweeps, usable by name: "
                          f"{', '.join(shipped())})") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory; give a sweep TOML file such as sweeps/demo.toml") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    return from_dict(apply_overrides(raw, overrides))
