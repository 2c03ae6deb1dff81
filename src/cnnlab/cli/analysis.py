"""``cnnlab info``, ``cnnlab compare`` and ``cnnlab cost``: parse arguments, call the analysis workflows."""

from __future__ import annotations

import json

from ..errors import CnnlabError


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="layers, shapes, parameters, MACs and receptive fields of a model")
    p.add_argument("model")
    p.add_argument("--input", default=None, help="CxHxW, e.g. 3x224x224 (default: the model's)")
    p.add_argument("--depth", type=int, default=2, help="deepest module level shown (default 2)")
    p.add_argument("--num-classes", type=int, default=None, help="classes of the head (default: native)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_info)

    p = subparsers.add_parser("compare", help="models side by side; --plot draws MACs against parameters")
    p.add_argument("models", nargs="+")
    p.add_argument("--input", default=None, help="CxHxW for every model (default: each model's own)")
    p.add_argument("--plot", default=None, help="write the bubble chart to this PNG/SVG/PDF")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_compare)

    p = subparsers.add_parser("cost", help="cost calculator: a convolution against its cheaper forms")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    c = kinds.add_parser("conv", help="one convolution, optionally against a 1x1 bottleneck before it")
    _layer_args(c, padding="same")
    c.add_argument("--groups", type=int, default=1, help="grouped convolution (without --bottleneck)")
    c.add_argument("--bottleneck", type=int, default=None, help="channels of a 1x1 reduction first")
    c.set_defaults(func=run_cost_conv)
    c = kinds.add_parser("separable", help="standard against depthwise + pointwise convolution")
    _layer_args(c, padding="valid")
    c.set_defaults(func=run_cost_separable)
    c = kinds.add_parser("stack", help="stacked small kernels against one big kernel (same receptive field)")
    c.add_argument("--channels", type=int, required=True)
    c.add_argument("--kernels", required=True, help="comma-separated, e.g. 3,3")
    c.add_argument("--vs", type=int, required=True, help="the single kernel, e.g. 5")
    c.add_argument("--size", default="1x1", help="HxW of the map for MACs (default 1x1: per pixel)")
    c.set_defaults(func=run_cost_stack)
    p.set_defaults(func=lambda _a: (p.print_help(), 2)[1])


def _layer_args(p, padding: str) -> None:
    p.add_argument("--input", required=True, help="HxWxC, e.g. 28x28x192")
    p.add_argument("--kernel", type=int, required=True)
    p.add_argument("--out", type=int, required=True, help="output channels")
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--padding", default=padding, help="same, valid or pixels per side")
    p.add_argument("--dilation", type=int, default=1)


def _padding(text: str):
    if text in ("same", "valid"):
        return text
    try:
        return int(text)
    except ValueError:
        raise CnnlabError(f"bad padding {text!r}; use same, valid or a number of pixels") from None


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise CnnlabError(f"bad {what} {text!r}; write integers separated by commas, e.g. 3,3") from None


def run_info(args) -> int:
    from ..workflows.analyze import info_text, model_info

    if args.depth < 0:
        raise CnnlabError(f"--depth must be >= 0, got {args.depth}")
    info = model_info(args.model, args.input, args.depth, args.num_classes)
    print(json.dumps(info, indent=2) if args.json else info_text(info))
    return 0


def run_compare(args) -> int:
    from ..utils.figures import check_picture_path
    from ..workflows.analyze import compare_rows, compare_text, plot_compare

    if args.plot:
        check_picture_path(args.plot, "--plot")

    rows = compare_rows(args.models, args.input)
    print(json.dumps(rows, indent=2) if args.json else compare_text(rows))
    if args.plot:
        print(f"wrote {plot_compare(rows, args.plot)}")
    return 0


def run_cost_conv(args) -> int:
    from ..analysis import cost

    pad = _padding(args.padding)
    if args.bottleneck is None:
        c = cost.conv_cost(
            args.input,
            args.out,
            args.kernel,
            stride=args.stride,
            padding=pad,
            dilation=args.dilation,
            groups=args.groups,
        )
        print(cost.describe_one(c))
        return 0
    if args.groups != 1:
        raise CnnlabError("--groups cannot be combined with --bottleneck; compare one of them at a time")
    cmp = cost.bottleneck(args.input, args.out, args.kernel, args.bottleneck, stride=args.stride, padding=pad,
                          dilation=args.dilation)
    print(cost.describe(cmp, f"{args.kernel}x{args.kernel} conv", "1x1 bottleneck + conv"))
    return 0


def run_cost_separable(args) -> int:
    from ..analysis import cost

    cmp = cost.separable(
        args.input,
        args.out,
        args.kernel,
        stride=args.stride,
        padding=_padding(args.padding),
        dilation=args.dilation,
    )
    print(cost.describe(cmp, "standard conv", "depthwise separable"))
    print(f"ratio formula 1/C_out + 1/K^2 = 1/{args.out} + 1/{args.kernel ** 2} = "
          f"{cost.mac_ratio_formula(args.out, args.kernel):.4g}")
    return 0


def run_cost_stack(args) -> int:
    from ..analysis import cost

    size = _ints(args.size.replace("x", ","), "--size")
    if len(size) != 2:
        raise CnnlabError(f"bad --size {args.size!r}; write it as HxW, e.g. 28x28")
    kernels = _ints(args.kernels, "--kernels")
    cmp = cost.stack(args.channels, kernels, args.vs, size)
    name = " + ".join(f"{k}x{k}" for k in kernels)
    print(cost.describe(cmp, f"one {args.vs}x{args.vs}", name, alternative_first=True))
    return 0
