"""Figures from ../shared/REFERENCE.md (papers, torchvision/timm), the oracle for model tests.

``params``: exact parameter count (``approx`` = the paper's rounded figure, compared to 2 significant
digits); ``gmacs``: multiply-accumulates in G at ``input`` (3 significant figures); ``kwargs``: how the
figure's model is built on top of the registry's native setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ref:
    params: int | None = None
    gmacs: float | None = None
    input: tuple[int, int, int] | None = None  # None = the model's default input
    kwargs: dict = field(default_factory=dict)
    approx: bool = False  # params is the paper's rounded figure


NO_AUX = {"aux_logits": False}

REFERENCE: dict[str, Ref] = {
    "lenet5": Ref(60_000),
    "lenet5_relu": Ref(61_706, 0.000417),
    "alexnet_2012": Ref(60_965_224, 0.724, (3, 227, 227)),
    "alexnet": Ref(61_100_840, 0.714),
    "zfnet": Ref(62_357_608, 1.168),
    "vgg16": Ref(138_357_544, 15.47),
    "vgg19": Ref(143_667_240, 19.63),
    # the other VGGs: torchvision's weights meta (num_params, _ops)
    "vgg11": Ref(132_863_336, 7.609),
    "vgg11_bn": Ref(132_868_840, 7.609),
    "vgg13": Ref(133_047_848, 11.308),
    "vgg13_bn": Ref(133_053_736, 11.308),
    "vgg16_bn": Ref(138_365_992, 15.47),
    "vgg19_bn": Ref(143_678_248, 19.632),
    "googlenet": Ref(6_624_904, 1.498, kwargs=NO_AUX),
    "googlenet_paper": Ref(7_005_832, 1.583, kwargs=NO_AUX),
    "resnet18": Ref(11_689_512, 1.81),
    "resnet34": Ref(21_797_672, 3.66),
    "resnet50": Ref(25_557_032, 4.09),
    "resnet101": Ref(44_549_160, 7.80),
    "resnet152": Ref(60_192_808, 11.51),
    "resnet50_v1": Ref(25_557_032, 3.86),
    "resnet101_v1": Ref(44_549_160, 7.57),
    "resnet152_v1": Ref(60_192_808, 11.28),
    "resnet20": Ref(270_000, approx=True),
    "resnet32": Ref(460_000, approx=True),
    "resnet44": Ref(660_000, approx=True),
    "resnet56": Ref(850_000, approx=True),
    "resnet110": Ref(1_700_000, approx=True),
    "preact_resnet164": Ref(1_703_258, 0.248),
    "preact_resnet50": Ref(25_549_352, 4.09),
    "wrn28_10": Ref(36_479_194, 5.24),
    "wide_resnet50_2": Ref(68_883_240, 11.40),
    "xception": Ref(22_855_952, 8.36),
    "densenet121": Ref(7_978_856, 2.83),
    "densenet169": Ref(14_149_480, 3.36),
    "densenet201": Ref(20_013_928, 4.29),
    "densenet_bc100_k12": Ref(769_162, 0.288),
    "mobilenet_v1": Ref(4_231_976, 0.569),
    "mobilenet_v1_050_160": Ref(1_331_592, 0.0765),
    "mobilenet_v2": Ref(3_504_872, 0.301),
    "resnext50_32x4d": Ref(25_028_904, 4.23),
    "se_resnet50": Ref(28_088_024, 4.09),
    "se_resnet50_v1": Ref(28_088_024, 3.86),
    "efficientnet_b0": Ref(5_288_548, 0.386),
    "efficientnet_b1": Ref(7_794_184, 0.687),
    "efficientnet_b2": Ref(9_109_994, 0.994),
    "efficientnet_b3": Ref(12_233_232, 1.827),
    "efficientnet_b4": Ref(19_341_616, 4.394),
    "efficientnet_b5": Ref(30_389_784, 10.266),
    "efficientnet_b6": Ref(43_040_704, 19.068),
    "efficientnet_b7": Ref(66_347_960, 37.746),
    "efficientnet_lite0": Ref(4_652_008, 0.385),
    "vit_b_16": Ref(86_567_656, 17.56),
    "vit_b_32": Ref(88_224_232, 4.409),  # torchvision's weights meta
    "vit_l_16": Ref(304_326_632, 61.555),
    "swin_t": Ref(28_288_354, 4.49),
}
