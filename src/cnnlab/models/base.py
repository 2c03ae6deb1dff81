"""The model contract every cnnlab model follows.

* ``forward(x)`` returns logits; ``forward_features(x)`` the last feature map (or tokens);
  ``forward_head(x, pre_logits=False)`` pools and classifies (``pre_logits=True`` returns the
  pooled features); ``reset_classifier(num_classes)`` swaps the head (0 = identity);
* ``stages``: named, ordered :class:`Stage` rows (attribute path, channels, reduction) used for
  freezing "the first N stages" and for feature extraction without per-architecture code;
* ``default_cfg``: a :class:`DataConfig` (input size, mean/std, interpolation, crop fraction).

:class:`ConvFCNet` (a conv stack, an adaptive pool and three FC layers) is the skeleton that AlexNet,
ZFNet and VGG share.

Subclasses set ``self.classifier_path`` (dotted attribute path of the final ``nn.Linear``),
``self.num_features``, ``self.stages`` and ``self.default_cfg`` in ``__init__`` and implement
``forward_features``. The default ``forward_head`` is global average pooling, optional dropout
(``self.head_drop``) and the classifier; families with another head override it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Stage:
    """One stage of a network: ``name`` is the attribute path of its module."""

    name: str
    channels: int
    reduction: int  # total stride from the input to this stage's output


@dataclass(frozen=True)
class DataConfig:
    input_size: tuple[int, int, int] = (3, 224, 224)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"  # bilinear | bicubic | nearest
    crop_pct: float = 0.875  # eval: resize the short side to size / crop_pct, centre-crop size

    def to_dict(self) -> dict:
        return asdict(self)

    def with_channels(self, in_chans: int) -> DataConfig:
        """The same config for ``in_chans`` input channels (mean/std averaged for grayscale)."""
        if in_chans == len(self.mean):
            return self
        mean = (sum(self.mean) / len(self.mean),) * in_chans
        std = (sum(self.std) / len(self.std),) * in_chans
        return DataConfig((in_chans, *self.input_size[1:]), mean, std, self.interpolation, self.crop_pct)


CIFAR_CFG = DataConfig(input_size=(3, 32, 32), mean=CIFAR_MEAN, std=CIFAR_STD, crop_pct=1.0)


class ClassifierModel(nn.Module):
    """Base class holding the shared parts of the contract."""

    classifier_path: str = "fc"
    num_features: int = 0
    stages: tuple[Stage, ...] = ()
    default_cfg: DataConfig = DataConfig()
    train_only_modules: tuple[str, ...] = ()  # submodules used only in training (GoogLeNet's aux heads)
    model_name: str = ""
    class_names: tuple[str, ...] | None = None  # the names of the outputs, when the weights say them

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if x.ndim == 4:
            x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        drop = self._modules.get("head_drop")  # a subclass may set self.head_drop = nn.Dropout(p)
        if drop is not None:
            x = drop(x)
        return x if pre_logits else self.get_classifier()(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def inference_params(self) -> int:
        """Parameters used at inference (training-only heads such as GoogLeNet's aux excluded)."""
        skip = tuple(f"{m}." for m in self.train_only_modules)
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith(skip))

    # -- classifier -----------------------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return self.get_submodule(self.classifier_path)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer by a freshly initialised one (``0`` gives an identity)."""
        old = self.get_classifier()
        in_features = getattr(old, "in_features", self.num_features)
        new = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()
        if isinstance(new, nn.Linear) and isinstance(old, nn.Linear):
            new = new.to(device=old.weight.device, dtype=old.weight.dtype)
        self._set_submodule(self.classifier_path, new)
        self.num_classes = num_classes
        self.class_names = None

    def _set_submodule(self, path: str, module: nn.Module) -> None:
        parent_path, _, leaf = path.rpartition(".")
        parent = self.get_submodule(parent_path) if parent_path else self
        if isinstance(parent, nn.Sequential) and leaf.isdigit():
            parent[int(leaf)] = module
        else:
            setattr(parent, leaf, module)

    # -- stages -----------------------------------------------------------------------------------
    def stage_modules(self) -> list[tuple[Stage, nn.Module]]:
        return [(s, self.get_submodule(s.name)) for s in self.stages]


def fc_head(
    in_features: int, hidden: int, num_classes: int, drop_rate: float, dropout_first: bool
) -> nn.Sequential:
    """Three FC layers as indices 0-6 (logits at ``6``), dropout before (torchvision AlexNet) or
    after (the papers, torchvision VGG) each hidden ReLU."""
    last = nn.Linear(hidden, num_classes) if num_classes > 0 else nn.Identity()
    if dropout_first:
        return nn.Sequential(nn.Dropout(drop_rate), nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
                             nn.Dropout(drop_rate), nn.Linear(hidden, hidden), nn.ReLU(inplace=True), last)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(drop_rate),
                         nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(drop_rate), last)


class ConvFCNet(ClassifierModel):
    """``features`` (a conv stack) -> ``avgpool`` (adaptive) -> ``classifier`` (three FC layers).

    The skeleton of AlexNet, ZFNet and VGG; the module names are torchvision's.
    ``forward_head(pre_logits=True)`` returns the
    output of the second hidden FC layer (``num_features`` = 4096).
    """

    classifier_path = "classifier.6"

    def __init__(self, features: nn.Sequential, stages, out_ch: int, num_classes: int, cfg: DataConfig,
                 pool_size: int, drop_rate: float = 0.5, dropout_first: bool = False) -> None:
        super().__init__()
        self.num_classes, self.num_features = num_classes, 4096
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = fc_head(out_ch * pool_size * pool_size, 4096, num_classes, drop_rate, dropout_first)
        self.stages = tuple(stages)
        self.default_cfg = cfg

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        for layer in self.classifier[:-1]:
            x = layer(x)
        return x if pre_logits else self.classifier[-1](x)
