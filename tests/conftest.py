import os
import tempfile

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
