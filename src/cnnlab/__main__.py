"""``python -m cnnlab`` (used by ``torchrun -m cnnlab train ...``)."""

import sys

from .cli.main import main

sys.exit(main())
