"""The finetune workflow in-process on a small generated folder: frozen parameters and BatchNorm
statistics stay bitwise the same, the feature cache is reused and invalidated, the cached head is
the whole model's head."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch

import cnnlab
from cnnlab import transfer as T
from cnnlab.transfer.cache_admin import list_caches
from cnnlab.transfer.feature_cache import open_entry
from cnnlab.weights import read_checkpoint
from cnnlab.workflows.finetune import FinetuneConfig, finetune

BASE = {"model": "resnet20", "input_size": 32, "batch_size": 8, "seed": 0, "progress": False}


def _run(tmp_path, folder, weights, name, **kw):
    cfg = FinetuneConfig(data=str(folder), weights=str(weights), out=str(tmp_path / "runs"), name=name,
                         cache_dir=str(tmp_path / "cache"), **{**BASE, **kw})
    return finetune(cfg)


@pytest.mark.parametrize("frozen_bn", ["eval", "train"])
def test_frozen_parts_bitwise_unchanged(tmp_path, folder, weights_file, frozen_bn):
    result = _run(
        tmp_path, folder, weights_file, "m", regime="medium", epochs=2, lr=0.01, frozen_bn=frozen_bn
    )
    before, _ = read_checkpoint(weights_file)
    after, _ = read_checkpoint(result.run_dir / "last.safetensors")
    model = cnnlab.create_model("resnet20", num_classes=3)
    seg = T.freeze_stages(model, 1)  # medium: the first half of 3 stages
    owner = {k: seg[k.rsplit(".", 1)[0] + ".weight"] for k in after if k.rsplit(".", 1)[0] + ".weight" in seg}
    frozen = [k for k in after if owner.get(k) in ("stem", "stage 1 (layer1)")]
    params = [k for k in frozen if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    stats = [k for k in frozen if k.endswith(("running_mean", "running_var"))]
    assert params and stats
    assert all(torch.equal(before[k], after[k]) for k in params)
    assert all(torch.equal(before[k], after[k]) for k in stats) == (frozen_bn == "eval")
    assert not torch.equal(before["layer3.2.conv2.weight"], after["layer3.2.conv2.weight"])
    assert not torch.equal(before["layer3.2.bn2.running_mean"], after["layer3.2.bn2.running_mean"])


def test_large_regime_trains_everything(tmp_path, folder, weights_file):
    result = _run(tmp_path, folder, weights_file, "l", regime="large", epochs=1, lr=0.01)
    before, _ = read_checkpoint(weights_file)
    after, _ = read_checkpoint(result.run_dir / "last.safetensors")
    assert not torch.equal(before["conv1.weight"], after["conv1.weight"])
    record = (result.run_dir / "transfer.json").read_text()
    assert '"freeze": "none"' in record and '"backbone_lr_mult": 0.1' in record


def test_cache_reused_then_rebuilt_after_touch(tmp_path, folder, weights_file, capsys):
    first = _run(tmp_path, folder, weights_file, "c1", epochs=3)
    out = capsys.readouterr().out
    assert "NO augmentation" in out and "feature cache extracted" in out
    assert first.best["val_top1"] > 0
    (entry,) = list_caches(tmp_path / "cache")
    assert entry.complete and entry.manifest["splits"]["train"]["rows"] == 24

    second = _run(tmp_path, folder, weights_file, "c2", epochs=3)
    assert "feature cache reused" in capsys.readouterr().out
    same = ("epoch", "train_loss", "val_loss", "val_top1")  # same features and seed: the same head training
    assert [second.best[k] for k in same] == [first.best[k] for k in same]

    image = folder / "train" / "c1" / "3.png"
    st = os.stat(image)
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    _run(tmp_path, folder, weights_file, "c3", epochs=1)
    assert "feature cache extracted" in capsys.readouterr().out
    assert len(list_caches(tmp_path / "cache")) == 2


def test_cached_head_is_the_whole_models_head(tmp_path, folder, weights_file):
    result = _run(tmp_path, folder, weights_file, "h", epochs=4, lr=0.01)
    (entry,) = list_caches(tmp_path / "cache")
    feats, labels = open_entry(entry.path).load("val").tensors
    model = cnnlab.create_model(
        "resnet20", num_classes=3, weights=str(result.run_dir / "last.safetensors")
    ).eval()
    from cnnlab.data import eval_transform, open_dataset

    splits = open_dataset(str(folder))
    splits.val.transform = eval_transform(replace(model.default_cfg, input_size=(3, 32, 32)))
    x = torch.stack([splits.val[i][0] for i in range(len(splits.val))])
    with torch.no_grad():
        direct = model(x)
        from_cache = model.get_classifier()(feats)
    assert torch.allclose(direct, from_cache, atol=1e-4)
    assert labels.tolist() == splits.val.targets


def test_augmented_copies(tmp_path, folder, weights_file, capsys):
    _run(tmp_path, folder, weights_file, "a", epochs=1, augment="cifar", cache_augment=2)
    assert "2 AUGMENTED copies" in capsys.readouterr().out
    (entry,) = list_caches(tmp_path / "cache")
    feats, labels = open_entry(entry.path).load("train").tensors
    assert len(feats) == 48 and torch.equal(labels[:24], labels[24:])
    assert not torch.equal(feats[:24], feats[24:])


def test_resume_continues_the_head_run(tmp_path, folder, weights_file, capsys):
    first = _run(tmp_path, folder, weights_file, "r", epochs=2)
    assert len(first.files) and (first.run_dir / "state.pt").is_file()
    more = finetune(FinetuneConfig(resume=str(first.run_dir), epochs=3, progress=False))
    assert "feature cache reused" in capsys.readouterr().out
    assert more.last["epoch"] == 3
    summary = (first.run_dir / "summary.json").read_text()
    assert '"epoch": 3' in summary and '"epoch": 1' in summary


def test_weights_from_torchvision_file_and_from_a_run_folder(tmp_path, folder):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(1)
    peer = torchvision.models.resnet18(num_classes=1000)
    torch.save(peer.state_dict(), tmp_path / "tv.pth")
    result = finetune(
        FinetuneConfig(
            data=str(folder),
            weights=str(tmp_path / "tv.pth"),
            model="resnet18",
            input_size=32,
            batch_size=8,
            epochs=1,
            out=str(tmp_path / "runs"),
            name="tv",
            cache_dir=str(tmp_path / "cache"),
            progress=False,
        )
    )
    saved, _ = read_checkpoint(result.run_dir / "last.safetensors")
    assert torch.equal(saved["layer3.0.conv1.weight"], peer.state_dict()["layer3.0.conv1.weight"])
    again = finetune(
        FinetuneConfig(
            data=str(folder),
            weights=str(result.run_dir),
            model="resnet18",
            input_size=32,
            batch_size=8,
            epochs=1,
            out=str(tmp_path / "runs"),
            name="again",
            cache_dir=str(tmp_path / "cache"),
            progress=False,
        )
    )
    assert again.best["val_top1"] >= 0
    assert len(list_caches(tmp_path / "cache")) == 1  # same backbone weights: the cache is shared
