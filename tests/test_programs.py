"""Stored programs (jaxsym.numerics.programs): same results as jax.jit, keyed on everything they close over, safe to
read from a damaged or crafted store."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym.certify.exact import (
    Polished as Pair,  # a NamedTuple of jaxsym's (stored tree structures name their classes)
)
from jaxsym.config import TrainConfig
from jaxsym.numerics import programs


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(programs, "_store", lambda: tmp_path)
    programs.forget()
    return tmp_path


def make(scale: np.ndarray):
    def fn(p: Pair, n: jax.Array) -> Pair:
        x = jax.lax.fori_loop(0, n, lambda i, x: jnp.sin(x) * scale + p.loss, p.W)
        return Pair(x, jnp.linalg.norm(x), n, n, n, n > 0)

    return fn


def pair(a: jax.Array, b: jax.Array) -> Pair:
    return Pair(a, b, 0, 0, 0, False)


ARGS = (pair(jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3), jnp.ones(3, jnp.float32)), np.int32(5))


def test_stored_program_equals_jit_and_is_read_back(store: Path):
    scale = np.array([0.5, 1.5, 2.0], np.float32)
    want = jax.jit(make(scale))(*ARGS)
    first = programs.jit(make(scale), name="t", key=scale)(*ARGS)
    files = list(store.glob("t-*.jaxprog"))
    assert len(files) == 1
    # within a process, the same name and key are the same program (cells differing only in its arguments)
    assert programs.jit(make(scale), name="t", key=scale) is programs.jit(make(scale), name="t", key=scale)
    assert programs.jit(make(scale), name="t", key=scale) is not programs.jit(make(scale), name="t", key=scale * 2)
    # a new Program (as in another process) reads the file instead of tracing: the function is never called
    programs.forget()
    never = programs.jit(lambda *a: pytest.fail("traced instead of read back"), name="t", key=scale)
    again = never(*ARGS)
    for got in (first, again):
        assert isinstance(got, Pair)
        np.testing.assert_array_equal(np.asarray(got.W), np.asarray(want.W))
        np.testing.assert_array_equal(np.asarray(got.loss), np.asarray(want.loss))


def test_key_and_shapes_select_the_program(store: Path):
    s1, s2 = np.array([0.5, 1.5, 2.0], np.float32), np.array([0.5, 1.5, 2.5], np.float32)
    r1 = programs.jit(make(s1), name="t", key=s1)(*ARGS)
    r2 = programs.jit(make(s2), name="t", key=s2)(*ARGS)
    assert not np.array_equal(np.asarray(r1.W), np.asarray(r2.W))
    np.testing.assert_array_equal(np.asarray(r2.W), np.asarray(jax.jit(make(s2))(*ARGS).W))
    wide = (pair(jnp.zeros((4, 3), jnp.float32), jnp.ones(3, jnp.float32)), np.int32(2))
    programs.jit(make(s1), name="t", key=s1)(*wide)
    assert len(list(store.glob("t-*.jaxprog"))) == 3


def test_arrays_placed_or_not_on_the_device_share_one_compiled_program(store: Path, compilations):
    """A stored program's outputs are committed to the device, arrays made on the host (``jax.device_put(x)``)
    are not; calls with either or a mix of both compile one program (XLA's compile events counted) and give the
    same bits."""
    scale = np.array([0.5, 1.5, 2.0], np.float32)
    prog = programs.jit(make(scale), name="t", key=scale)
    W, loss = (np.asarray(x) for x in (ARGS[0].W, ARGS[0].loss))
    want = prog(pair(jax.device_put(W), jax.device_put(loss)), np.int32(5))  # uncommitted
    assert want.W.committed
    device = jax.devices()[0]
    with compilations() as compiled:
        got = [prog(pair(jax.device_put(W, device), jax.device_put(loss, device)), np.int32(5)),
               prog(pair(jax.device_put(W, device), jax.device_put(loss)), np.int32(5))]
    assert compiled == []
    for g in got:
        np.testing.assert_array_equal(np.asarray(g.W), np.asarray(want.W))


def test_damaged_or_crafted_files_are_exported_again(store: Path):
    scale = np.array([0.5, 1.5, 2.0], np.float32)
    want = np.asarray(jax.jit(make(scale))(*ARGS).W)
    programs.jit(make(scale), name="t", key=scale)(*ARGS)
    (path,) = store.glob("t-*.jaxprog")
    path.write_bytes(path.read_bytes()[:100])  # truncated
    programs.forget()  # a later process
    np.testing.assert_array_equal(np.asarray(programs.jit(make(scale), name="t", key=scale)(*ARGS).W), want)

    class Evil:
        def __reduce__(self):
            return (pytest.fail, ("code from a stored program ran",))

    path.write_bytes(pickle.dumps({"module": b"", "out_tree": Evil()}))
    programs.forget()
    np.testing.assert_array_equal(np.asarray(programs.jit(make(scale), name="t", key=scale)(*ARGS).W), want)
    assert path.stat().st_size > 1000  # rewritten


def test_digest_is_by_content_and_refuses_functions():
    cfg = TrainConfig()
    assert programs.digest((cfg, np.eye(3))) == programs.digest((TrainConfig(), np.eye(3)))
    assert programs.digest(cfg) != programs.digest(dataclasses.replace(cfg, learning_rate=0.051))
    assert programs.digest(np.eye(3)) != programs.digest(np.eye(3, dtype=np.float32))
    assert programs.digest((1, 2)) != programs.digest((1.0, 2.0))
    with pytest.raises(TypeError, match="function"):
        programs.digest((cfg, lambda x: x))


def test_without_a_store_it_is_jax_jit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(programs, "_store", lambda: None)
    scale = np.array([0.5, 1.5, 2.0], np.float32)
    got = programs.jit(make(scale), name="t", key=scale)(*ARGS)
    np.testing.assert_array_equal(np.asarray(got.W), np.asarray(jax.jit(make(scale))(*ARGS).W))
    assert not list(tmp_path.iterdir())
