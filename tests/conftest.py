import pytest

from jaxsym import config

TINY = {"name": "tiny", "seed": 0, "runs": 24, "chunk_size": 8,
        "grid": {"d": [4, 5], "k": "d"}, "train": {"steps": 2500, "learning_rate": 0.1, "grad_tol": 1e-6}}


@pytest.fixture
def tiny_cfg():
    return config.from_dict(TINY)
