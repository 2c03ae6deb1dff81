"""Benchmark of cnnlab.analysis: speed of profiling every model, and counts beside fvcore, ptflops,
thop and torchinfo.

1. Profiles every registered model at its default input (meta tensors, 2 CPU threads) and reports
   the time per model and in total (goal: all of them in under 60 s).
2. Counts parameters and MACs of a dozen models with cnnlab and each peer in the same run, and marks
   a count right when it equals REFERENCE.md (tests/reference.py): parameters exactly, MACs to 3
   significant figures. Peers run on real CPU tensors (they need them); each peer gets a fresh copy
   of the model, and we record whether it left extra entries in the state_dict.

Run: ``python benchmarks/bench_analysis.py`` (peers: ``pip install -e ".[bench]"``). Writes
benchmarks/results/analysis.json and prints two tables.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reference import REFERENCE  # noqa: E402

import cnnlab  # noqa: E402
from cnnlab.analysis import profile  # noqa: E402
from cnnlab.registry import native_model  # noqa: E402
from cnnlab.utils.io import write_json  # noqa: E402

COMPARED = ["lenet5_relu", "alexnet", "vgg16", "googlenet", "resnet50", "densenet121", "mobilenet_v2",
            "efficientnet_b0", "xception", "resnext50_32x4d", "se_resnet50", "vit_b_16", "swin_t"]


def sig3(x: float) -> float:
    return float(f"{x:.3g}")


def time_all_models() -> dict:
    torch.set_num_threads(2)
    rows, start = [], time.perf_counter()
    for name in cnnlab.list_models():
        t0 = time.perf_counter()
        with torch.device("meta"):
            model = native_model(name)
        prof = profile(model, model.default_cfg.input_size)
        rows.append({"model": name, "seconds": round(time.perf_counter() - t0, 3), "gmacs": prof.macs / 1e9})
    return {"models": len(rows), "total_seconds": round(time.perf_counter() - start, 2), "per_model": rows}


def _fvcore(model, x):
    from fvcore.nn import FlopCountAnalysis

    count = FlopCountAnalysis(model, x)
    count.unsupported_ops_warnings(False)
    count.uncalled_modules_warnings(False)
    return count.total(), sum(p.numel() for p in model.parameters())


def _ptflops(model, x):
    from ptflops import get_model_complexity_info

    macs, params = get_model_complexity_info(model, tuple(x.shape[1:]), as_strings=False,
                                             print_per_layer_stat=False, verbose=False)
    return macs, params


def _thop(model, x):
    from thop import profile as thop_profile

    macs, params = thop_profile(model, inputs=(x,), verbose=False)
    return macs, params


def _torchinfo(model, x):
    from torchinfo import summary

    stats = summary(model, input_data=x, verbose=0)
    return stats.total_mult_adds, stats.total_params


PEERS = {"fvcore": _fvcore, "ptflops": _ptflops, "thop": _thop, "torchinfo": _torchinfo}


def _cnnlab(model, x):
    prof = profile(model, tuple(x.shape[1:]))
    return prof.macs, prof.params


def compare_counts() -> list[dict]:
    torch.set_num_threads(2)
    rows = []
    for name in COMPARED:
        if name not in cnnlab.list_models():
            continue
        ref = REFERENCE[name]
        torch.manual_seed(0)
        base = native_model(name, **ref.kwargs).eval()
        size = ref.input or base.default_cfg.input_size
        x = torch.randn(1, *size)
        row = {"model": name, "input": list(size), "ref_params": ref.params, "ref_gmacs": ref.gmacs}
        for tool, fn in {"cnnlab": _cnnlab, **PEERS}.items():
            model = copy.deepcopy(base)
            keys = set(model.state_dict())
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
                    warnings.simplefilter("ignore")
                    macs, params = fn(model, x)
                macs, params = int(macs), int(params)
            except Exception as exc:  # noqa: BLE001  (a peer failing is a result, not a crash)
                row[tool] = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
                continue
            row[tool] = {"gmacs": macs / 1e9, "params": params, "seconds": round(time.perf_counter() - t0, 2),
                         "macs_right": sig3(macs / 1e9) == sig3(ref.gmacs),
                         "params_right": params == ref.params,
                         "extra_state_keys": len(set(model.state_dict()) - keys)}
        rows.append(row)
        print(f"  {name} done", file=sys.stderr)
    return rows


def _cell(entry: dict) -> str:
    if "error" in entry:
        return "error"
    mark = "ok" if entry["macs_right"] else "WRONG"
    p = "" if entry["params_right"] else " P!"
    dirty = f" +{entry['extra_state_keys']}buf" if entry["extra_state_keys"] else ""
    return f"{entry['gmacs']:.4g} {mark}{p}{dirty}"


def main() -> int:
    speed = time_all_models()
    print(
        f"profiled {speed['models']} registered models at their default inputs in "
        f"{speed['total_seconds']} s (2 threads; slowest: "
        + ", ".join(
            f"{r['model']} {r['seconds']} s"
            for r in sorted(speed["per_model"], key=lambda r: -r["seconds"])[:3]
        )
        + ")"
    )
    rows = compare_counts()
    tools = ["cnnlab", *PEERS]
    print(f"\n{'model':<18} {'REFERENCE':>10} " + " ".join(f"{t:>22}" for t in tools))
    for r in rows:
        print(f"{r['model']:<18} {r['ref_gmacs']:>10} " + " ".join(f"{_cell(r[t]):>22}" for t in tools))
    right = {t: sum(1 for r in rows if r[t].get("macs_right") and r[t].get("params_right")) for t in tools}
    print("\nGMACs; ok = equals REFERENCE to 3 significant figures; P! = parameter count wrong; "
          "+Nbuf = entries left in the state_dict.")
    print("fully right (MACs and params): " + ", ".join(f"{t} {right[t]}/{len(rows)}" for t in tools))
    write_json(ROOT / "benchmarks" / "results" / "analysis.json",
               {"torch": torch.__version__, "threads": 2, "cpu_count": os.cpu_count(), "speed": speed,
                "counts": rows, "fully_right": right})
    return 0


if __name__ == "__main__":
    sys.exit(main())
