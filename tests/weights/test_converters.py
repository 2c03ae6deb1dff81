"""Every catalogue entry's converter: a randomly initialised peer of the entry's architecture (its
``peer``), converted by the cnnlab model's ``convert_state_dict`` and loaded strictly, must give the
peer's outputs. One test per (model, peer) pair covers all the tags of that pair.

Cost: the models are built with their initialisers switched off (every value is overwritten: the
peer's by random values, ours by the converted tensors, taken without a copy with ``assign=True``); ViTs run
at 32 px (the same tensors except for the length of the position embedding), most convolutional networks
at 32 px, Swin at its 224 px. The package-file entries (efficientnet_pytorch names) are checked with the
real files in test_real_weights.py.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from cnnlab.registry import get_entry
from cnnlab.weights import strip_prefixes
from cnnlab.weights.catalogue import _load

from .conftest import no_init, peer_model

BIG_MB = 200  # pairs whose published file is larger (about 50M parameters) are marked slow


def pairs() -> list:
    cat = _load((), ())  # the bundled catalogue only
    found: dict[tuple[str, str], list[str]] = {}
    big = {e.model for e in cat.entries.values() if (e.size_mb or 0) > BIG_MB}
    for e in cat.entries.values():
        if e.peer.split(":")[0] in ("torchvision", "timm"):
            found.setdefault((e.model, e.peer), []).append(e.tag)
    return [pytest.param(m, p, tags, id=f"{m}-{p}", marks=[pytest.mark.slow] if m in big else [])
            for (m, p), tags in sorted(found.items())]


SIZE = {"swin": 224, "alexnet": 64, "googlenet": 64, "xception": 64}  # px; the rest run at 32 px


def _sizes(model: str) -> tuple[int, dict, dict]:
    """(input size, cnnlab builder kwargs, peer kwargs by library)."""
    family = get_entry(model).family
    if family == "vit":
        return 32, {"image_size": 32}, {"torchvision": {"image_size": 32}, "timm": {"img_size": 32}}
    return SIZE.get(family, 32), {}, {"torchvision": {}, "timm": {}}


def cnnlab_model(model: str, sd: dict, kw: dict) -> torch.nn.Module:
    """The cnnlab model holding ``sd`` converted by its own converter (strict: every tensor, no extra)."""
    with no_init():
        ours = get_entry(model).builder(**kw)
    ours.model_name = model
    convert = getattr(ours, "convert_state_dict", None)
    converted = convert(strip_prefixes(sd)) if convert else strip_prefixes(sd)
    ours.load_state_dict(converted, strict=True, assign=True)
    again = convert(dict(ours.state_dict())) if convert else ours.state_dict()
    assert set(again) == set(converted)  # the cache stores converted names: converting them again is a no-op
    return ours.eval()


@pytest.mark.parametrize("model, peer, tags", pairs())
def test_converter_gives_the_peers_outputs(model, peer, tags):
    size, ours_kw, peer_kw = _sizes(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's googlenet warns about its default initialisation
        theirs = peer_model(peer, **peer_kw[peer.split(":")[0]])
    ours = cnnlab_model(model, theirs.state_dict(), ours_kw)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = theirs(x), ours(x)
    assert got.shape == want.shape == (1, 1000)
    assert want.std() > 1e-2, "outputs too small for a meaningful comparison"
    assert (want - got).abs().max().item() <= 1e-4 * max(1.0, want.abs().max().item()), (model, peer, tags)
