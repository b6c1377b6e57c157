"""Jitted programs whose lowered form is kept on disk, so that a later process neither traces nor lowers them.

JAX's persistent compilation cache (:func:`jaxsym.numerics.parallel.use_compilation_cache`) spares a later process the
XLA compilation of a program, but not tracing it to a jaxpr and lowering it to StableHLO: for the programs of
one sweep cell (the compacting engine at two slot counts, the float64 hand-off and polish) that is about half
a second per cell, more than training 1,000 runs takes. :func:`jit` removes it: the first call of a program
with given argument shapes exports it (:func:`jax.export.export`) and stores the serialized module next to
the compilation cache; later processes deserialize it, and calling it lowers a single ``call_exported``
operation whose compiled form the compilation cache already holds.

**Keys.** A stored program is found by a SHA-256 digest of: the caller's ``name`` and ``key`` (every value
the function closes over: configs, targets, sizes — :func:`digest` refuses values it cannot hash by content,
such as functions), the source text of every jaxsym module, the versions of jax and jaxlib, the backend and
device kind, the x64 flag, and the argument shapes, dtypes and tree structure. Changing any of them gives a
new program; a stored file that cannot be read is exported again and overwritten (atomically).

Programs are stored only when a compilation cache directory is set and this process has one device
(an exported module is for a fixed device count); otherwise :func:`jit` is :func:`jax.jit`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import pickle
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import jax
import jaxlib
import numpy as np

R = TypeVar("R")

_SAFE_MODULES = ("jaxsym.", "optax.", "jax.", "jaxlib.", "builtins", "collections")


def digest(obj: Any) -> str:
    """A content hash of configs, arrays and plain values (nested tuples, lists, dicts, dataclasses,
    NamedTuples). Raises ``TypeError`` for anything else (a function, an object compared by identity), so
    that a program is never keyed on what it does not depend on."""
    h = hashlib.sha256()

    def feed(x: Any) -> None:
        if x is None or isinstance(x, (bool, int, float, str, bytes, complex, np.generic)):
            h.update(f"{type(x).__name__}:{x!r};".encode())
        elif isinstance(x, (np.ndarray, jax.Array)):
            a = np.ascontiguousarray(np.asarray(x))
            h.update(f"array:{a.dtype.str}:{a.shape}:".encode())
            h.update(a.tobytes())
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            h.update(f"dc:{type(x).__qualname__}(".encode())
            for f in dataclasses.fields(x):
                h.update(f"{f.name}=".encode())
                feed(getattr(x, f.name))
            h.update(b")")
        elif isinstance(x, dict):
            h.update(b"dict{")
            for k in sorted(x, key=repr):
                feed(k)
                feed(x[k])
            h.update(b"}")
        elif isinstance(x, (tuple, list)):
            h.update(f"{type(x).__qualname__}[".encode())
            for v in x:
                feed(v)
            h.update(b"]")
        else:
            raise TypeError(f"cannot key a stored program on a {type(x).__name__} ({x!r:.60}); pass the values "
                            "it is built from")

    feed(obj)
    return h.hexdigest()


@functools.cache
def _source_digest() -> str:
    """SHA-256 of every jaxsym module's source: any code change gives new programs."""
    h = hashlib.sha256()
    root = Path(__file__).parents[1]  # the jaxsym package, every subpackage included
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _store() -> Path | None:
    where = jax.config.jax_compilation_cache_dir
    if not where or jax.local_device_count() != 1:
        return None
    return Path(where) / "jaxsym-programs"


class _Unpickler(pickle.Unpickler):
    """Tree structures only: classes from jaxsym, optax, jax and the standard containers."""

    def find_class(self, module: str, name: str) -> Any:
        if not module.startswith(_SAFE_MODULES):
            raise pickle.UnpicklingError(f"refusing {module}.{name} in a stored program")
        return super().find_class(module, name)


def _load(path: Path) -> tuple[jax.export.Exported, Any] | None:
    try:
        blob = _Unpickler(io.BytesIO(path.read_bytes())).load()
        return jax.export.deserialize(bytearray(blob["module"])), blob["out_tree"]
    except FileNotFoundError:
        return None
    except Exception:  # unreadable or from another version: export again and overwrite
        return None


def _save(path: Path, exp: jax.export.Exported, out_tree: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(pickle.dumps({"module": bytes(exp.serialize()), "out_tree": out_tree}))
        os.replace(tmp, path)
    except OSError:  # a read-only or full cache directory only costs the next process the lowering
        tmp.unlink(missing_ok=True)


class Program(Generic[R]):
    """``fn`` jitted, with its lowered form stored per argument signature (module docstring)."""

    def __init__(self, fn: Callable[..., R], name: str, key: Any, compiler_options: dict[str, Any] | None = None
                 ) -> None:
        self.fn = fn
        self.name = name
        self.key = digest((name, key))
        self.options = compiler_options
        self._calls: dict[Any, tuple[Callable[..., Any], Any]] = {}
        self._lock = threading.Lock()  # one export/load per signature when chunks run in threads
        self._jit = jax.jit(fn, compiler_options=compiler_options)

    def __call__(self, *args: Any) -> R:
        store = _store()
        if store is None:
            return self._jit(*args)
        leaves, in_tree = jax.tree.flatten(args)
        avals = [jax.typeof(x) for x in leaves]
        sig = (in_tree, tuple((a.shape, a.dtype.str, a.weak_type) for a in avals), bool(jax.config.jax_enable_x64))
        with self._lock:  # per store too: one process may change its cache directory (tests do)
            if (store, sig) not in self._calls:
                self._calls[store, sig] = self._program(store, avals, in_tree, sig)
        call, out_tree = self._calls[store, sig]
        return jax.tree.unflatten(out_tree, call(*leaves))

    def _program(self, store: Path, avals: list[Any], in_tree: Any, sig: Any) -> tuple[Callable[..., Any], Any]:
        platform = jax.export.default_export_platform()  # "cuda" or "rocm" where jax.default_backend() is "gpu"
        full = digest((self.key, repr(sig), _source_digest(), jax.__version__, jaxlib.__version__, platform,
                       jax.local_devices()[0].device_kind))
        path = store / f"{self.name}-{full[:32]}.jaxprog"
        got = _load(path)
        if got is None:
            box: list[Any] = []

            def flat(*xs: Any) -> list[Any]:
                out, tree = jax.tree.flatten(self.fn(*jax.tree.unflatten(in_tree, list(xs))))
                box.append(tree)
                return out

            specs = [jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type) for a in avals]
            exp = jax.export.export(jax.jit(flat), platforms=[platform])(*specs)
            got = (exp, box[0])
            _save(path, exp, box[0])
        exp, out_tree = got
        # every argument placed on the one device: a call's outputs are committed to it and arrays made on the
        # host are not, and jit compiles a program again for each mix of the two (the same module and bits)
        one = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        return jax.jit(exp.call, in_shardings=one, compiler_options=self.options), out_tree


_PROGRAMS: dict[tuple[str, str], Program[Any]] = {}
_PROGRAMS_LOCK = threading.Lock()


def forget() -> None:
    """Forget this process's programs, as a new process starts: the next :func:`jit` of a name and key makes a new
    program, which reads the store again (tests use it to play a later process)."""
    with _PROGRAMS_LOCK:
        _PROGRAMS.clear()


def jit(fn: Callable[..., R], *, name: str, key: Any, compiler_options: dict[str, Any] | None = None
        ) -> Callable[..., R]:
    """``jax.jit(fn, compiler_options=…)``, stored across processes under ``(name, key)`` where a compilation
    cache is set.

    ``key`` must hold every value ``fn`` closes over (configs, target arrays, sizes), by content; the source
    of jaxsym, the JAX versions, the device and the argument shapes are added here (the stored form is the
    lowered program, which compiler options do not change; the compilation cache keys on them). Within a
    process, equal ``(name, key, compiler_options)`` give the *same* program (the first ``fn`` passed), so
    cells that differ only in a program's arguments — a step size, a seed — compile it once.
    """
    memo = (digest((name, key)), repr(sorted((compiler_options or {}).items())))
    with _PROGRAMS_LOCK:
        prog = _PROGRAMS.get(memo)
        if prog is None:
            prog = _PROGRAMS[memo] = Program(fn, name, key, compiler_options)
    return prog
