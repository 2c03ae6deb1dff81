"""The convolution cost calculator: output size, weights and MACs of a layer and its cheaper forms.

Conventions (REFERENCE.md section 2): a feature map is written H x W x C; the output size is
``floor((n + 2p - k_eff) / s) + 1`` with ``k_eff = d (k - 1) + 1`` for dilation ``d``; "same"
padding gives ``ceil(n / s)`` (TensorFlow's rule, split as evenly as possible); weights exclude
biases; a convolution's MACs are ``k_h * k_w * (C_in / groups) * C_out * H_out * W_out * batch``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import CnnlabError


@dataclass(frozen=True)
class ConvCost:
    """One convolution: shapes are (H, W, C); ``weights`` excludes the biases."""

    label: str
    input: tuple[int, int, int]
    output: tuple[int, int, int]
    kernel: int
    stride: int
    padding: tuple[int, int]  # total padding along H and W
    dilation: int
    groups: int
    weights: int
    macs: int


@dataclass(frozen=True)
class Comparison:
    """A layer (``baseline``) against a sequence of layers doing the same job (``alternative``)."""

    baseline: ConvCost
    alternative: tuple[ConvCost, ...]
    receptive_field: tuple[int, int] = (0, 0)  # baseline's and alternative's (stacks only)

    @property
    def alt_weights(self) -> int:
        return sum(c.weights for c in self.alternative)

    @property
    def alt_macs(self) -> int:
        return sum(c.macs for c in self.alternative)

    @property
    def weight_ratio(self) -> float:
        return self.alt_weights / self.baseline.weights

    @property
    def mac_ratio(self) -> float:
        return self.alt_macs / self.baseline.macs


def _positive(what: str, value: int, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise CnnlabError(f"{what} must be an integer >= {low}, got {value!r}")
    return value


def parse_hwc(text: str | Sequence[int]) -> tuple[int, int, int]:
    """``"28x28x192"`` -> (28, 28, 192)."""
    try:
        parts = tuple(int(v) for v in (text.lower().split("x") if isinstance(text, str) else text))
    except (ValueError, TypeError):
        parts = ()
    if len(parts) != 3 or min(parts) < 1:
        raise CnnlabError(
            f"bad feature map {text!r}; write it as HxWxC with positive integers, e.g. 28x28x192"
        )
    return parts  # type: ignore[return-value]


def output_size(
    n: int, kernel: int, stride: int = 1, padding: int | str = 0, dilation: int = 1
) -> tuple[int, int]:
    """(output size, total padding) along one axis; ``padding`` is per side, "same" or "valid"."""
    k_eff = dilation * (kernel - 1) + 1
    if padding == "same":
        out = -(-n // stride)
        total = max((out - 1) * stride + k_eff - n, 0)
    else:
        pad = 0 if padding == "valid" else _positive("padding", padding, 0)
        total = 2 * pad
        if n + total < k_eff:
            raise CnnlabError(f"kernel {kernel} (effective {k_eff}) is larger than the padded input "
                              f"{n} + {total}; use a smaller kernel or more padding")
        out = (n + total - k_eff) // stride + 1
    if out < 1:
        raise CnnlabError(
            f"output size {out} for input {n}, kernel {kernel}, stride {stride}: not a valid layer"
        )
    return out, total


def conv_cost(input_hwc: Sequence[int], out_channels: int, kernel: int, *, stride: int = 1,
              padding: int | str = 0, dilation: int = 1, groups: int = 1, batch: int = 1,
              label: str = "") -> ConvCost:
    """Output shape, weights and MACs of one ``kernel x kernel`` convolution."""
    h, w, c = parse_hwc(input_hwc)
    for what, v in (("out channels", out_channels), ("kernel", kernel), ("stride", stride),
                    ("dilation", dilation), ("groups", groups), ("batch", batch)):
        _positive(what, v)
    if c % groups or out_channels % groups:
        raise CnnlabError(f"channels {c} -> {out_channels} are not divisible by groups={groups}; "
                          "pick groups that divides both")
    oh, ph = output_size(h, kernel, stride, padding, dilation)
    ow, pw = output_size(w, kernel, stride, padding, dilation)
    weights = kernel * kernel * (c // groups) * out_channels
    macs = weights * oh * ow * batch
    label = label or f"{kernel}x{kernel} {c}->{out_channels}" + (f" (groups {groups})" if groups > 1 else "")
    return ConvCost(
        label, (h, w, c), (oh, ow, out_channels), kernel, stride, (ph, pw), dilation, groups, weights, macs
    )


def bottleneck(input_hwc: Sequence[int], out_channels: int, kernel: int, width: int, *, stride: int = 1,
               padding: int | str = "same", dilation: int = 1) -> Comparison:
    """The ``kernel`` convolution against a 1x1 reduction to ``width`` channels followed by it."""
    direct = conv_cost(input_hwc, out_channels, kernel, stride=stride, padding=padding, dilation=dilation)
    reduce = conv_cost(input_hwc, width, 1, label=f"1x1 {direct.input[2]}->{width} (bottleneck)")
    main = conv_cost(reduce.output, out_channels, kernel, stride=stride, padding=padding, dilation=dilation)
    return Comparison(direct, (reduce, main))


def separable(input_hwc: Sequence[int], out_channels: int, kernel: int, *, stride: int = 1,
              padding: int | str = 0, dilation: int = 1) -> Comparison:
    """A standard convolution against depthwise (groups = C_in) followed by a 1x1 pointwise one.

    The MAC ratio is ``1 / C_out + 1 / K^2`` (MobileNet, arXiv:1704.04861, eq. 5)."""
    standard = conv_cost(input_hwc, out_channels, kernel, stride=stride, padding=padding, dilation=dilation)
    c = standard.input[2]
    depthwise = conv_cost(input_hwc, c, kernel, stride=stride, padding=padding, dilation=dilation, groups=c,
                          label=f"{kernel}x{kernel} depthwise {c}->{c}")
    pointwise = conv_cost(depthwise.output, out_channels, 1, label=f"1x1 pointwise {c}->{out_channels}")
    return Comparison(standard, (depthwise, pointwise))


def stack(channels: int, kernels: Sequence[int], vs: int, size: Sequence[int] = (1, 1)) -> Comparison:
    """Stacked stride-1 "same" convolutions (``kernels``) against one ``vs x vs`` convolution of the
    same receptive field; MACs at an ``size`` = (H, W) map (default 1x1, i.e. per output pixel)."""
    if not kernels:
        raise CnnlabError("give at least one kernel, e.g. --kernels 3,3")
    _positive("channels", channels)
    for k in (*kernels, vs):
        _positive("kernel", k)
    h, w = size
    single = conv_cost((h, w, channels), channels, vs, padding="same")
    layers = tuple(conv_cost((h, w, channels), channels, k, padding="same") for k in kernels)
    return Comparison(single, layers, (vs, 1 + sum(k - 1 for k in kernels)))


def mac_ratio_formula(out_channels: int, kernel: int) -> float:
    """Depthwise-separable / standard MACs = 1/C_out + 1/K^2."""
    return 1 / out_channels + 1 / kernel**2


def fmt_int(n: int) -> str:
    return f"{n:,}"


def describe(
    cmp: Comparison, baseline_name: str, alternative_name: str, alternative_first: bool = False
) -> str:
    """A plain-text report of a comparison (what ``cnnlab cost`` prints)."""
    lines = [f"{baseline_name}:", _line(cmp.baseline), f"{alternative_name}:", *map(_line, cmp.alternative)]
    if len(cmp.alternative) > 1:
        lines.append(
            f"  {'total':<34} {'':>24} weights {fmt_int(cmp.alt_weights):>11}  MACs "
            f"{fmt_int(cmp.alt_macs):>13}"
        )
    if cmp.receptive_field != (0, 0):
        lines.append(f"receptive field: {cmp.receptive_field[0]}x{cmp.receptive_field[0]} vs "
                     f"{cmp.receptive_field[1]}x{cmp.receptive_field[1]}")
    for what, base, alt in (
        ("weights", cmp.baseline.weights, cmp.alt_weights),
        ("MACs", cmp.baseline.macs, cmp.alt_macs),
    ):
        pair = [(base, baseline_name), (alt, alternative_name)]
        (a, a_name), (b, b_name) = pair[::-1] if alternative_first else pair
        lines.append(f"{what + ':':<8} {fmt_int(a)} ({a_name}) vs {fmt_int(b)} ({b_name}): "
                     f"{alternative_name} / {baseline_name} = {alt / base:.4g} ({base / alt:.3g}x fewer)")
    return "\n".join(lines)


def describe_one(c: ConvCost) -> str:
    return f"{_line(c).strip()}\nweights: {fmt_int(c.weights)}\nMACs:    {fmt_int(c.macs)}"


def _line(c: ConvCost) -> str:
    shape = f"{'x'.join(map(str, c.input))} -> {'x'.join(map(str, c.output))}"
    total = c.padding[0]
    pad = str(total // 2) if total % 2 == 0 else f"{total // 2}/{total - total // 2}"
    extra = f"stride {c.stride}, pad {pad}" + (f", dil {c.dilation}" if c.dilation > 1 else "")
    return (f"  {c.label:<34} {shape:>24} weights {fmt_int(c.weights):>11}  MACs {fmt_int(c.macs):>13}"
            f"  ({extra})")


def receptive_field_of_stack(kernels: Sequence[int]) -> int:
    """Stride-1 stacked convolutions see ``1 + sum(k - 1)`` pixels (three 3x3 see 7x7)."""
    return 1 + sum(k - 1 for k in kernels)

