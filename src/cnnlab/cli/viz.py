"""``cnnlab viz filters|features|cam|deconv``: pictures of what a network has learned, one PNG each.

    cnnlab viz filters MODEL [--weights W] -o filters.png
    cnnlab viz features MODEL IMAGE --stage NAME [--top N] -o features.png
    cnnlab viz cam MODEL IMAGE [--class IDX|NAME] [--method gradcam|cam] [--stage NAME] -o cam.png
    cnnlab viz deconv MODEL IMAGE [--layer NAME] [--channel C] -o deconv.png

Bad input (an unknown stage, an unreadable image, a class out of range, an unsupported model) prints
one line and exits with code 2.
"""

from __future__ import annotations

WEIGHTS_HELP = ("checkpoint file, run folder or pretrained tag such as 'imagenet' "
                "(default: random initialisation, which shows noise)")


def register(subparsers) -> None:
    p = subparsers.add_parser("viz", help="visualise filters, feature maps, CAMs and deconvnet projections",
                              description="Pictures of what a network has learned; each command writes one "
                              "PNG.")
    sub = p.add_subparsers(dest="viz_command", metavar="WHAT", required=True)

    f = _common(sub.add_parser("filters", help="first conv layer's kernels as a tile grid",
                               description="The first nn.Conv2d's kernels, each min-max scaled on its own."),
                image=False)
    f.set_defaults(func=run_filters)

    f = _common(sub.add_parser("features", help="feature maps of one stage for one image",
                               description="The channels of a stage with the largest mean activation."))
    f.add_argument("--stage", required=True, help="stage name (a wrong one lists them) or module path")
    f.add_argument("--top", type=int, default=16, help="channels shown (default 16)")
    f.set_defaults(func=run_features)

    f = _common(sub.add_parser("cam", help="class activation map (CAM) or Grad-CAM for one image",
                               description="Where the evidence for one class lies: CAM (Zhou et al. 2016) "
                               "for global-average-pool + linear heads, Grad-CAM (Selvaraju et al. 2017) for "
                               "any model and stage."))
    f.add_argument("--class", dest="target", default=None, metavar="IDX|NAME",
                   help="class index or name (default: the predicted class)")
    f.add_argument("--method", choices=("gradcam", "cam"), default="gradcam", help="default gradcam")
    f.add_argument("--stage", default=None, help="Grad-CAM layer: stage name or module path "
                   "(default: the last feature map)")
    f.set_defaults(func=run_cam)

    f = _common(sub.add_parser("deconv", help="ZFNet deconvnet projection of one activation",
                               description="Zeiler & Fergus's deconvnet: keep one activation of a layer and "
                               "project it back to pixels (plain conv/ReLU/max-pool stacks: AlexNet, ZFNet, "
                               "VGG, lenet5_relu)."))
    f.add_argument("--layer", default=None, help="module path in the conv stack, e.g. features.11 "
                   "(default: the deepest stage)")
    f.add_argument("--channel", type=int, default=None, help="channel (default: the strongest activation)")
    f.set_defaults(func=run_deconv)


def _common(p, image: bool = True):
    p.add_argument("model", help="registered model name, e.g. efficientnet_lite0")
    if image:
        p.add_argument("image", help="image file (JPEG, PNG, ...)")
    p.add_argument("--weights", default=None, help=WEIGHTS_HELP)
    p.add_argument("-o", "--out", default=None, help="PNG to write (default: MODEL-WHAT.png)")
    return p


def _out(args) -> str:
    return args.out or f"{args.model}-{args.viz_command}.png"


def _report(result) -> int:
    print(f"{result.summary}\nwrote {result.path}")
    return 0


def run_filters(args) -> int:
    from ..workflows.visualize import visualize_filters

    return _report(visualize_filters(args.model, args.weights, out=_out(args)))


def run_features(args) -> int:
    from ..workflows.visualize import visualize_features

    return _report(
        visualize_features(args.model, args.image, args.stage, args.weights, args.top, out=_out(args))
    )


def run_cam(args) -> int:
    from ..workflows.visualize import visualize_cam

    return _report(visualize_cam(args.model, args.image, args.weights, args.target, args.method, args.stage,
                                 out=_out(args)))


def run_deconv(args) -> int:
    from ..workflows.visualize import visualize_deconv

    return _report(
        visualize_deconv(args.model, args.image, args.weights, args.layer, args.channel, out=_out(args))
    )
