import contextlib
import os
import tempfile
from collections.abc import Iterator

# One persistent XLA compilation cache for the whole test run, its workers and the CLI processes they start:
# many tests compile the same programs (same shapes), which is most of their time on a CPU. Set before jax loads.
os.environ.setdefault("JAXSYM_COMPILATION_CACHE",
                      os.path.join(tempfile.gettempdir(), f"jaxsym-tests-xla-{os.getuid()}"))

import pytest

from jaxsym import config
from jaxsym.numerics.parallel import use_compilation_cache

use_compilation_cache()

TINY = {"name": "tiny", "seed": 0, "runs": 24, "chunk_size": 8,
        "grid": {"d": [4, 5], "k": "d"}, "train": {"steps": 2500, "learning_rate": 0.1, "grad_tol": 1e-6}}


@pytest.fixture
def tiny_cfg():
    return config.from_dict(TINY)


@contextlib.contextmanager
def _compilations() -> Iterator[list[str]]:
    """XLA compilations (JAX's ``backend_compile_duration`` events) while the block runs, as a list of events."""
    from jax._src import monitoring  # the public module lacks unregister_event_duration_listener

    got: list[str] = []

    def listen(event: str, secs: float, **kw: object) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            got.append(event)

    monitoring.register_event_duration_secs_listener(listen)
    try:
        yield got
    finally:
        monitoring.unregister_event_duration_listener(listen)


@pytest.fixture
def compilations():
    """``with compilations() as got:`` — the XLA compilations while the block runs (:func:`_compilations`)."""
    return _compilations
