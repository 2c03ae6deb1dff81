"""Does the exported model give the PyTorch model's answers?

Both run on the same batches; the check reports the largest absolute logit difference, the same
difference relative to the largest reference logit, and the fraction of inputs whose top-1 class
agrees. The tolerance is on the relative figure with a floor of 1 (``|a - b| / max(1, max|a|)``), so
it reads as an absolute logit difference for logits of order one and does not punish float rounding
on models whose logits are in the hundreds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import torch

from ..errors import CnnlabError

FP32_TOLERANCE = 1e-4  # relative logit difference allowed for a float32 export
FP16_TOLERANCE = 2e-2  # ... and for a float16 one (10 mantissa bits)


class ParityError(CnnlabError):
    """The exported model does not reproduce the PyTorch model within the tolerance."""


@dataclass(frozen=True)
class Parity:
    max_abs: float  # largest |logit difference|
    rel: float  # max_abs / max(1, largest |reference logit|)
    top1: float  # fraction of inputs with the same top-1 class, in [0, 1]
    inputs: int  # inputs compared
    tolerance: float | None  # the bound on rel (None: only reported, as for int8)

    @property
    def ok(self) -> bool:
        return self.tolerance is None or self.rel <= self.tolerance

    def text(self) -> str:
        bound = "" if self.tolerance is None else f" (tolerance {self.tolerance:g})"
        return (f"parity on {self.inputs} inputs: max |logit diff| {self.max_abs:.3g}, relative "
                f"{self.rel:.3g}{bound}, top-1 agreement {100 * self.top1:.1f}%")

    def to_dict(self) -> dict:
        return asdict(self)


def compare(reference: Callable, candidate: Callable, batches: Iterable[torch.Tensor],
            tolerance: float | None) -> Parity:
    """Run both callables (float tensor in, logits out) on every batch and compare their logits."""
    max_abs, max_ref, agree, count = 0.0, 0.0, 0, 0
    with torch.no_grad():
        for x in batches:
            ref = reference(x).float()
            got = torch.as_tensor(candidate(x)).float()
            if got.shape != ref.shape:
                raise ParityError(f"the exported model returns shape {tuple(got.shape)} for input "
                                  f"{tuple(x.shape)}; PyTorch returns {tuple(ref.shape)}")
            if not torch.isfinite(got).all():
                raise ParityError("the exported model returns non-finite logits (NaN or inf)")
            max_abs = max(max_abs, (got - ref).abs().max().item())
            max_ref = max(max_ref, ref.abs().max().item())
            agree += int((got.argmax(1) == ref.argmax(1)).sum())
            count += x.shape[0]
    if count == 0:
        raise CnnlabError("parity needs at least one input")
    return Parity(max_abs, max_abs / max(1.0, max_ref), agree / count, count, tolerance)


def random_batches(input_size, sizes: Iterable[int], seed: int = 0) -> list[torch.Tensor]:
    """Standard-normal batches (the scale of normalised images), one per batch size, reproducible."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn((n, *input_size), generator=g) for n in sizes]
