"""Checkpoint loading: formats, safety, head re-initialisation, clear errors."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file

import cnnlab
from cnnlab.errors import CheckpointError
from cnnlab.weights import save_weights


def _same(a, b):
    return all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_state_dict_round_trip(tmp_path, suffix):
    src = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1)
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        save_file(src.state_dict(), str(path))
    else:
        torch.save(src.state_dict(), path)
    dst = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1, weights=str(path))
    assert _same(src, dst)


def test_wrapped_and_ddp_prefixed_state_dict(tmp_path):
    src = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in src.state_dict().items()}, "epoch": 3}, path)
    dst = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1, weights=path)
    assert _same(src, dst)


def test_cnnlab_checkpoint_and_run_folder(tmp_path):
    src = cnnlab.create_model("lenet5", num_classes=10, in_chans=1)
    save_weights(src, tmp_path / "run" / "best.safetensors")
    dst = cnnlab.create_model("lenet5", num_classes=10, in_chans=1, weights=tmp_path / "run")
    assert _same(src, dst)
    with pytest.raises(CheckpointError, match="checkpoint is for model 'lenet5'"):
        cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1, weights=tmp_path / "run")


def test_other_class_count_reinitialises_head(tmp_path, caplog):
    src = cnnlab.create_model("lenet5_relu", num_classes=10, in_chans=1)
    torch.save(src.state_dict(), tmp_path / "w.pth")
    dst = cnnlab.create_model("lenet5_relu", num_classes=3, in_chans=1, weights=tmp_path / "w.pth")
    assert "re-initialised" in caplog.text
    assert torch.equal(dst.features[0].weight, src.features[0].weight)
    assert dst.fc.weight.shape == (3, 84)


def test_headless_checkpoint_loads_the_body_and_says_the_head_is_fresh(tmp_path, caplog):
    src = cnnlab.create_model("resnet18", num_classes=10)
    body = {k: v for k, v in src.state_dict().items() if not k.startswith(src.classifier_path + ".")}
    torch.save(body, tmp_path / "body.pth")
    dst = cnnlab.create_model("resnet18", num_classes=10, weights=tmp_path / "body.pth")
    assert "no classifier" in caplog.text
    assert torch.equal(dst.conv1.weight, src.conv1.weight) and not torch.equal(dst.fc.weight, src.fc.weight)
    caplog.clear()
    with pytest.raises(CheckpointError):  # another architecture: the error alone, no head notice before it
        cnnlab.create_model("vgg11", num_classes=10, weights=tmp_path / "body.pth")
    assert "no classifier" not in caplog.text and "re-initialised" not in caplog.text


def test_other_architecture_is_refused(tmp_path):
    torch.save(cnnlab.create_model("lenet5_relu", in_chans=1).state_dict(), tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="does not fit lenet5"):
        cnnlab.create_model("lenet5", in_chans=1, weights=tmp_path / "w.pth")


def test_truncated_file(tmp_path):
    torch.save(cnnlab.create_model("lenet5_relu").state_dict(), tmp_path / "w.pth")
    data = (tmp_path / "w.pth").read_bytes()
    (tmp_path / "t.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        cnnlab.create_model("lenet5_relu", weights=tmp_path / "t.pth")
    (tmp_path / "t.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        cnnlab.create_model("lenet5_relu", weights=tmp_path / "t.safetensors")


@pytest.mark.parametrize("junk", [b"junk\n", b"\x80\x02}q\x00(X", bytes(range(256)) * 4])
def test_garbage_files_are_one_clear_error(tmp_path, junk):
    (tmp_path / "junk.pth").write_bytes(junk)
    with pytest.raises(CheckpointError, match="truncated or corrupt|never unpickles|not a state_dict"):
        cnnlab.create_model("lenet5_relu", weights=tmp_path / "junk.pth")


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_arbitrary_pickle_is_never_unpickled(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"weight": Evil()}, fh, protocol=2)  # as torch.save writes
    with pytest.raises(CheckpointError, match="never unpickles"):
        cnnlab.create_model("lenet5_relu", weights=path)
    assert "this must never run" not in capsys.readouterr().out


def test_pickle_that_is_not_a_state_dict(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state_dict"):
        cnnlab.create_model("lenet5_relu", weights=tmp_path / "list.pth")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        cnnlab.create_model("lenet5_relu", weights=tmp_path / "nope.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        cnnlab.create_model("lenet5_relu", weights=tmp_path / "empty.pth")
