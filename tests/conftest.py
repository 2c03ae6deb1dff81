import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

SCENES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "scenes")


@pytest.fixture(scope="session")
def scenes_dir():
    """The shared real photos; tests that use them skip cleanly when they are absent."""
    if not os.path.isdir(SCENES):
        pytest.skip("../shared/data/scenes is not present")
    return os.path.abspath(SCENES)
