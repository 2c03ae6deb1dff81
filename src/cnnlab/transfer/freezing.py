"""Transfer learning: freezing the first stages, frozen BatchNorm, discriminative learning rates and
the per-stage parameter report. Feature caching is in :mod:`cnnlab.transfer.feature_cache`.

Where a parameter sits is decided from the model's ``stages`` alone, never per architecture: each
:class:`~cnnlab.models.base.Stage` names the module whose output is the stage's output, and modules
are registered in the order they run (true of every cnnlab family). So stage ``i`` owns the
parameters registered after stage ``i - 1``'s module and up to the end of its own module; the
parameters before the first stage's module are the "stem", those after the last stage (and outside
the classifier) the "neck", and ``classifier_path`` is the head that is replaced and always trained.

* ``freeze_stages(model, n)`` freezes the stem and the first ``n`` stages (``n = "all"``: everything
  but the classifier, i.e. everything up to ``forward_head(x, pre_logits=True)``; ``"none"``: nothing).
* ``--frozen-bn eval`` (the default): :func:`train_mode_hook` puts the model in train mode and the
  BatchNorm layers of the frozen part back in eval mode, so their running statistics do not drift.
  A BatchNorm layer counts as frozen when all its parameters are (an affine-free one: when its
  parent's are). Dropout in the frozen part keeps training mode.
* :func:`transfer_param_groups`: the classifier at ``lr``, the trainable backbone at
  ``lr * backbone_lr_mult`` (discriminative learning rates).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..engine.optim import is_no_decay
from ..errors import CnnlabError

FROZEN_BN_MODES = ("eval", "train")
HEAD_RELU_BIAS = 0.01  # the new head's bias when its outputs pass through a ReLU (see replace_head)


@dataclass
class SegmentCount:
    """One row of the parameter report: a stem, a stage, the neck or the classifier."""

    name: str  # "stem", "stage 1 (layer1)", "neck", "classifier"
    trainable: int
    frozen: int


def _module_spans(model: nn.Module) -> dict[str, tuple[int, int]]:
    """name -> (position, position of its last descendant) in ``named_modules`` order."""
    names = [n for n, _ in model.named_modules()]
    spans, stack = {}, []
    for pos, name in enumerate(names):
        while stack and not (stack[-1] == "" or name.startswith(stack[-1] + ".")):
            done = stack.pop()
            spans[done] = (spans[done][0], pos - 1)
        spans[name] = (pos, pos)
        stack.append(name)
    for done in stack:
        spans[done] = (spans[done][0], len(names) - 1)
    return spans


def _classifier_prefix(model: nn.Module) -> str:
    path = getattr(model, "classifier_path", None)
    if not path:
        raise CnnlabError(f"{type(model).__name__} has no classifier_path; transfer needs a cnnlab model")
    return path


def segments(model: nn.Module) -> dict[str, str]:
    """Parameter name -> segment name ("stem", "stage i (path)", "neck", "classifier")."""
    stages = list(getattr(model, "stages", ()))
    if not stages:
        raise CnnlabError(f"{type(model).__name__} lists no stages; transfer needs a cnnlab model")
    spans = _module_spans(model)
    head = _classifier_prefix(model)
    start = spans[stages[0].name][0]
    ends = [spans[s.name][1] for s in stages]
    out = {}
    for module_name, module in model.named_modules():
        pos = spans[module_name][0]
        for leaf, _ in module.named_parameters(recurse=False):
            name = f"{module_name}.{leaf}" if module_name else leaf
            out[name] = _segment_of(name, pos, head, start, ends, stages)
    return out


def _segment_of(name: str, pos: int, head: str, start: int, ends: list[int], stages) -> str:
    if name.startswith(head + "."):
        return "classifier"
    if pos < start:
        return "stem"
    for i, end in enumerate(ends):
        if pos <= end:
            return f"stage {i + 1} ({stages[i].name})"
    return "neck"


def segment_order(model: nn.Module) -> list[str]:
    return ["stem", *(f"stage {i + 1} ({s.name})" for i, s in enumerate(model.stages)), "neck", "classifier"]


def parse_freeze(value: str | int, num_stages: int) -> int | str:
    """``"all"``, ``"none"`` or a stage count 0..num_stages (from a flag or a config)."""
    text = str(value).strip().lower()
    if text in ("all", "none"):
        return text
    if text.isdigit() and int(text) <= num_stages:
        return int(text)
    raise CnnlabError(f"--freeze {value!r} must be all, none or a stage count 0..{num_stages} "
                      "(`cnnlab info MODEL` lists the stages)")


def freeze_stages(model: nn.Module, n: int | str) -> dict[str, str]:
    """Freeze the stem and the first ``n`` stages (``"all"``: all but the classifier, or all but the
    neck and the classifier when the classifier has no parameters; ``"none"``).

    Sets ``requires_grad`` and returns the segment of each parameter. The classifier is never frozen.
    """
    n = parse_freeze(n, len(getattr(model, "stages", ())))
    seg = segments(model)
    order = segment_order(model)
    frozen_rows = {"none": 0, "all": len(order) - 1}[n] if isinstance(n, str) else (1 + n if n else 0)
    if n == "all" and not has_trainable_head(model):
        frozen_rows -= 1  # a head without parameters (LeNet-5's RBF codes): the neck is what trains
    frozen = set(order[:frozen_rows])
    for name, p in model.named_parameters():
        p.requires_grad_(seg[name] not in frozen)
    return seg


def parameter_report(model: nn.Module) -> list[SegmentCount]:
    """Trainable and frozen parameter counts per segment, in forward order (empty rows left out)."""
    seg = segments(model)
    rows = {name: SegmentCount(name, 0, 0) for name in segment_order(model)}
    for name, p in model.named_parameters():
        row = rows[seg[name]]
        if p.requires_grad:
            row.trainable += p.numel()
        else:
            row.frozen += p.numel()
    return [r for r in rows.values() if r.trainable or r.frozen]


def format_report(rows: list[SegmentCount]) -> str:
    """The report as an aligned text table with a total row."""
    width = max(len(r.name) for r in rows + [SegmentCount("total", 0, 0)])
    lines = [f"  {'part':<{width}} {'trainable':>12} {'frozen':>12}"]
    lines += [f"  {r.name:<{width}} {r.trainable:>12,} {r.frozen:>12,}" for r in rows]
    lines.append(
        f"  {'total':<{width}} {sum(r.trainable for r in rows):>12,} {sum(r.frozen for r in rows):>12,}"
    )
    return "\n".join(lines)


def frozen_norm_layers(model: nn.Module) -> list[nn.Module]:
    """BatchNorm layers whose parameters are all frozen (affine-free ones: their parent's)."""
    out = []
    parents = {m: parent for parent in model.modules() for m in parent.children()}
    for m in model.modules():
        if not isinstance(m, nn.modules.batchnorm._BatchNorm):
            continue
        owner = m if any(True for _ in m.parameters()) else parents.get(m, model)
        params = list(owner.parameters())
        if params and not any(p.requires_grad for p in params):
            out.append(m)
    return out


def train_mode_hook(model: nn.Module, frozen_bn: str = "eval"):
    """The ``set_train_mode`` of :func:`cnnlab.engine.fit` for ``--frozen-bn`` (see module doc)."""
    if frozen_bn not in FROZEN_BN_MODES:
        raise CnnlabError(f"--frozen-bn {frozen_bn!r} is not one of {', '.join(FROZEN_BN_MODES)}")
    frozen = frozen_norm_layers(model) if frozen_bn == "eval" else []

    def set_train_mode(m: nn.Module) -> None:
        m.train()
        for bn in frozen:
            bn.eval()

    return set_train_mode


def transfer_param_groups(model: nn.Module, lr: float, backbone_lr_mult: float, weight_decay: float,
                          exclude_norm_bias: bool = False) -> list[dict]:
    """Optimizer groups of the trainable parameters: classifier at ``lr``, backbone at
    ``lr * backbone_lr_mult``; each split by weight decay as :func:`cnnlab.engine.param_groups`."""
    if backbone_lr_mult < 0:
        raise CnnlabError(f"--backbone-lr-mult must be >= 0, got {backbone_lr_mult}")
    head = _classifier_prefix(model) + "."
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = (name.startswith(head), exclude_norm_bias and is_no_decay(name, p))
            groups.setdefault(key, []).append(p)
    out = []
    for (is_head, no_decay), params in groups.items():
        out.append({"params": params, "lr": lr if is_head else lr * backbone_lr_mult,
                    "weight_decay": 0.0 if no_decay else weight_decay, "l1": not no_decay})
    return out


def replace_head(model: nn.Module, num_classes: int) -> None:
    """A new classifier for ``num_classes`` (``0``: none, the model returns its pre-logits features).

    A linear head starts with zero weights and bias: the logits start at 0 (loss ln C) whatever the
    feature scale, as in BiT (Kolesnikov et al. 2019, arXiv:1912.11370). The families' own head inits
    (e.g. EfficientNet's uniform +-1/sqrt(classes)) give 2-class heads logits in the tens on pretrained
    features, which Adam at 1e-3 takes hundreds of steps to undo. A head whose outputs pass through a
    ReLU (NIN's class maps) gets a small positive bias instead of zero, so that its gradient is not zero.
    A head without parameters (LeNet-5's fixed RBF codes) is rebuilt for the new class count as the
    family builds it.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise CnnlabError(f"num_classes must be an integer >= 0, got {num_classes!r}")
    model.reset_classifier(num_classes)
    model.class_names = None
    head = model.get_classifier()
    for p in head.parameters(recurse=False):
        nn.init.zeros_(p)
    bias = getattr(head, "bias", None)
    if getattr(model, "head_relu", False) and bias is not None:
        nn.init.constant_(bias, HEAD_RELU_BIAS)  # equal logits still, but the ReLU passes gradients


def has_trainable_head(model: nn.Module) -> bool:
    """Whether the classifier has parameters to train (LeNet-5's RBF output has none)."""
    return any(True for _ in model.get_classifier().parameters())
