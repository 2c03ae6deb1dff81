"""LeNet-5: LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 1998 (section II-B, Fig. 2, Table I).

``lenet5`` follows the paper: C1 (6@28x28) - S2 (trainable subsampling) - C3 (16@10x10, the sparse
connection table of Table I) - S4 - C5 (120) - F6 (84) with the scaled tanh f(a) = 1.7159 tanh(2a/3)
after every layer. Trainable parameters up to and including F6 at 1 input channel:

    C1 156 + S2 12 + C3 1,516 + S4 32 + C5 48,120 + F6 10,164 = 60,000 (the paper's figure)

The output layer is the paper's Euclidean RBF: y_i = ||f6 - c_i||^2 with fixed (buffer, not trained)
centres, and logit_i = -y_i / T. Deviations: (1) the paper's centres are hand-drawn 7x12 bitmaps of
the ASCII glyphs; we use fixed pseudo-random +-1 codes of the same length (84), which exist for any
class count. (2) The paper's criterion (eq. 9) is cross-entropy over -y_i, i.e. T = 1; cnnlab's
default is T = 50 (``rbf_temperature``), which leaves every prediction (the arg-min distance)
unchanged but keeps the loss from saturating: on the built-in digits, Adam 1e-3, 20 epochs, no
augmentation, 3 seeds, validation top-1 went from 96.3% (T = 1) to 98.0% (T = 50).
``lenet5(rbf_temperature=1.0)`` trains with the paper's exact criterion.

``lenet5_relu`` is the common modern variant ("textbook", 61,706 parameters for 10 classes): ReLU,
2x2 max pooling, a dense C3 and a linear output layer.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_model
from .base import ClassifierModel, DataConfig, Stage

# Table I: which S2 maps (columns 0-5) feed each C3 map (0-15).
C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)
LENET_CFG = DataConfig(input_size=(1, 32, 32), mean=(0.5,), std=(0.5,), crop_pct=1.0)


class ScaledTanh(nn.Module):
    """f(a) = A tanh(S a) with A = 1.7159, S = 2/3 (paper, Appendix A)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class Subsample(nn.Module):
    """S2/S4: the sum over 2x2 cells times a trainable coefficient plus a trainable bias, per map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), 0.25))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = nn.functional.avg_pool2d(x, 2) * 4.0  # sum of each 2x2 cell
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class SparseConv(nn.Module):
    """C3: a 5x5 convolution where output map j sees only the input maps of ``table[j]``.

    Only the 60 connected 5x5 kernels are parameters (1,500 weights + 16 biases); ``forward`` scatters
    them into a dense weight with a precomputed index, so there is no loop over maps.
    """

    def __init__(self, in_ch: int, table: tuple[tuple[int, ...], ...], kernel: int = 5) -> None:
        super().__init__()
        pairs = [(o, i) for o, ins in enumerate(table) for i in ins]
        self.out_ch, self.in_ch, self.kernel = len(table), in_ch, kernel
        self.register_buffer("index", torch.tensor([o * in_ch + i for o, i in pairs]), persistent=False)
        bound = torch.tensor([2.4 / (len(table[o]) * kernel * kernel) for o, _ in pairs])  # U(-2.4/F, 2.4/F)
        self.weight = nn.Parameter((torch.rand(len(pairs), kernel, kernel) * 2 - 1) * bound.view(-1, 1, 1))
        self.bias = nn.Parameter(torch.zeros(self.out_ch))

    def dense_weight(self) -> torch.Tensor:
        k = self.kernel
        w = self.weight.new_zeros(self.out_ch * self.in_ch, k, k)
        w = w.index_copy(0, self.index, self.weight)
        return w.view(self.out_ch, self.in_ch, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.dense_weight(), self.bias)


class RBFOutput(nn.Module):
    """logit_i = -sum_j (x_j - c_ij)^2 / T with fixed +-1 centres (a buffer, so not trained)."""

    def __init__(self, in_features: int, num_classes: int, seed: int = 5, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature
        g = torch.Generator().manual_seed(seed)
        codes = torch.randint(0, 2, (num_classes, in_features), generator=g, device="cpu").float() * 2 - 1
        self.register_buffer("centres", codes.to(torch.empty(0).device))
        self.in_features = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # squared distances written out rather than torch.cdist: exact, and every exporter takes it
        # (the ONNX exporter has no cdist, whose batch-size-dependent algorithm it cannot translate)
        return -(x.unsqueeze(1) - self.centres.to(x.dtype)).pow(2).sum(-1) / self.temperature


class LeNet5(ClassifierModel):
    """The 1998 paper's network (see the module docstring for the parameter count)."""

    classifier_path = "rbf"

    def __init__(self, num_classes: int = 10, in_chans: int = 1, rbf_temperature: float = 50.0) -> None:
        super().__init__()
        if not rbf_temperature > 0:
            from ..errors import CnnlabError

            raise CnnlabError(f"rbf_temperature must be > 0, got {rbf_temperature!r}")
        self.num_classes, self.num_features, self.rbf_temperature = num_classes, 84, rbf_temperature
        act = ScaledTanh
        self.c1 = nn.Sequential(nn.Conv2d(in_chans, 6, 5), act())  # 32 -> 28
        self.s2 = nn.Sequential(Subsample(6), act())  # 28 -> 14
        self.c3 = nn.Sequential(SparseConv(6, C3_TABLE), act())  # 14 -> 10
        self.s4 = nn.Sequential(Subsample(16), act())  # 10 -> 5
        self.c5 = nn.Sequential(nn.Conv2d(16, 120, 5), act())  # 5 -> 1
        self.f6 = nn.Sequential(nn.Linear(120, 84), act())
        self.rbf = (
            RBFOutput(84, num_classes, temperature=rbf_temperature) if num_classes > 0 else nn.Identity()
        )
        self.stages = (Stage("c1", 6, 1), Stage("s2", 6, 2), Stage("c3", 16, 2), Stage("s4", 16, 4),
                       Stage("c5", 120, 4))
        self.default_cfg = LENET_CFG.with_channels(in_chans)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.c5(self.s4(self.c3(self.s2(self.c1(x)))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.f6(torch.flatten(x, 1))
        return x if pre_logits else self.rbf(x)

    def reset_classifier(self, num_classes: int) -> None:
        device = self.f6[0].weight.device
        rbf = RBFOutput(84, num_classes, temperature=self.rbf_temperature)
        self.rbf = rbf.to(device) if num_classes > 0 else nn.Identity()
        self.num_classes = num_classes


class LeNet5ReLU(ClassifierModel):
    """The modern textbook LeNet-5: ReLU, max pooling, dense C3, linear output."""

    classifier_path = "fc"

    def __init__(self, num_classes: int = 10, in_chans: int = 1) -> None:
        super().__init__()
        self.num_classes, self.num_features = num_classes, 84
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 32 -> 28 -> 14
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 14 -> 10 -> 5
            nn.Conv2d(16, 120, 5), nn.ReLU(inplace=True),  # 5 -> 1
        )
        self.pre_logits = nn.Sequential(nn.Linear(120, 84), nn.ReLU(inplace=True))
        self.fc = nn.Linear(84, num_classes) if num_classes > 0 else nn.Identity()
        self.stages = (Stage("features.2", 6, 2), Stage("features.5", 16, 4), Stage("features.7", 120, 4))
        self.default_cfg = LENET_CFG.with_channels(in_chans)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pre_logits(torch.flatten(x, 1))
        return x if pre_logits else self.fc(x)


PAPER = "LeCun et al. 1998, Proc. IEEE 86(11)"


@register_model(family="lenet", paper=PAPER, native={"in_chans": 1, "num_classes": 10})
def lenet5(num_classes: int = 1000, in_chans: int = 3, **kw) -> LeNet5:
    return LeNet5(num_classes, in_chans, **kw)


@register_model(family="lenet", paper=PAPER, native={"in_chans": 1, "num_classes": 10})
def lenet5_relu(num_classes: int = 1000, in_chans: int = 3, **kw) -> LeNet5ReLU:
    return LeNet5ReLU(num_classes, in_chans, **kw)
