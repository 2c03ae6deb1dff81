"""``cnnlab export MODEL[:WEIGHTS] -o FILE``: flags -> :class:`~cnnlab.workflows.export.ExportConfig` ->
``export``."""

from __future__ import annotations

import argparse
import json

S = argparse.SUPPRESS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write a trained model as ONNX, TorchScript or torch.export, parity checked",
        description="Export a model with its class names and preprocessing embedded. The file is loaded "
        "back in its runtime (onnxruntime for ONNX) and its logits compared with PyTorch's; beyond the "
        "tolerance the export fails and no file is written.")
    p.add_argument("model", help="MODEL[:WEIGHTS]: a registered name with a run folder, checkpoint or "
                   "pretrained tag after the colon, or a run folder / cnnlab checkpoint alone")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="the file to write (.onnx, .pt, .pt2)")
    p.add_argument("--format", default=S, help="onnx | torchscript | exported (default onnx)")
    p.add_argument("--batch", default=S, help="dynamic | N: any batch size, or a fixed one (default dynamic)")
    p.add_argument("--input-size", type=int, default=S, metavar="PX",
                   help="image side (default: the weights' preprocessing)")
    p.add_argument("--opset", type=int, default=S, help="ONNX opset, 17-23 (default 18)")
    p.add_argument("--half", action="store_true", default=S, help="float16 weights, float32 inputs/outputs")
    p.add_argument("--quantize", default=S, choices=["int8"], help="int8: onnxruntime static quantisation")
    p.add_argument("--calibration", default=S, metavar="DIR",
                   help="images to calibrate int8 on (a folder, searched recursively)")
    p.add_argument("--calibration-images", type=int, default=S, help="most calibration images (default 64)")
    p.add_argument("--no-fold-bn", dest="fold_bn", action="store_false", default=S,
                   help="keep BatchNorm layers (default: folded into the convolution before them)")
    p.add_argument("--tolerance", type=float, default=S,
                   help="parity bound on the relative logit difference (default 1e-4, 2e-2 with --half)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..workflows.export import export

    given = {k: v for k, v in vars(args).items() if k not in ("model", "json", "func", "command")}
    result = export(args.model, None, given)
    print(json.dumps(result.to_dict(), indent=2, default=str) if args.json else result.text())
    return 0
