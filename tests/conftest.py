import os

# One thread per test process: pytest-xdist runs one worker per core, and the CLI tests start
# subprocesses; more threads than cores makes torch's OpenMP pools stall each other. Set before torch
# is imported so that subprocesses inherit it too.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# Caches (splits, statistics, features, weights) of the tests go to a folder of their own, never the
# user's ~/.cache/cnnlab; tests that look at a cache set their own folder on top of this.
# (CNNLAB_HOME would win over the CNNLAB_CACHE that tests set: it is cleared.)
os.environ.pop("CNNLAB_HOME", None)
if "CNNLAB_CACHE" not in os.environ:
    import tempfile

    os.environ["CNNLAB_CACHE"] = tempfile.mkdtemp(prefix="cnnlab-tests-cache-")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

SCENES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "scenes")


@pytest.fixture(scope="session")
def scenes_dir():
    """The shared real photos; tests that use them skip cleanly when they are absent."""
    if not os.path.isdir(SCENES):
        pytest.skip("../shared/data/scenes is not present")
    return os.path.abspath(SCENES)
