"""Loading a trained model the one way every workflow does (predict, evaluate, viz, export, interpret).

``load_trained(model, weights)`` returns a :class:`Trained`: the model in eval mode, its class names
and its evaluation preprocessing, all from the weights:

* a run folder of ``cnnlab train``/``finetune`` or a cnnlab checkpoint: the model name (``model`` may
  be left out), the class count and names, the input channels and the preprocessing the run validated
  with (size, mean/std, interpolation, crop fraction) are read from the checkpoint's metadata;
* a pretrained tag (``"imagenet"``): ImageNet's class names and the weights' own preprocessing;
* a torchvision/timm state_dict: the class count off the classifier (1000: ImageNet's names), the
  channels off the first convolution, the model's default preprocessing;
* no weights: a randomly initialised network, with a notice (its answers are guesses).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..errors import CheckpointError, CnnlabError
from ..models.base import DataConfig
from ..registry import create_model, get_entry, list_models
from ..utils.io import read_json_object
from ..utils.log import notice
from ..weights import default_class_names


@dataclass
class Trained:
    """A model ready for inference, with what it needs to be fed and read."""

    model: nn.Module  # eval mode
    name: str  # the registered model name
    classes: list[str]  # output index -> class name
    preprocessing: DataConfig  # the evaluation preprocessing (cnnlab.data.eval_transform)
    weights: str | None = None  # where the weights came from (a path, a tag), None: untrained
    run: dict | None = None  # the run's config.json when the weights are a run's
    temperature: float = 1.0  # softmax(logits / T): the run's calibration.json (cnnlab interpret), else 1

    @property
    def in_chans(self) -> int:
        return int(self.preprocessing.input_size[0])

    @property
    def image_mode(self) -> str:
        """The PIL mode images are read in: "L" for 1-channel models, else "RGB"."""
        return "L" if self.in_chans == 1 else "RGB"

    def transform(self):
        from ..data.transforms import eval_transform

        return eval_transform(self.preprocessing)


def load_trained(model=None, weights=None, *, num_classes: int | None = None, in_chans: int | None = None,
                 quiet: bool = False) -> Trained:
    """See the module docstring. ``model``: a registered name, a built cnnlab model, or ``None`` when
    ``weights`` is a run folder or cnnlab checkpoint that names its model. ``num_classes`` /
    ``in_chans``: force them (default: the weights'). ``quiet``: no notice for an untrained network."""
    if isinstance(model, nn.Module):
        return _from_module(model)
    model, weights = model_and_weights(model, weights)
    if model is None:
        model = model_of(weights)
    if not isinstance(model, str):
        raise CnnlabError(f"model must be a registered name or a cnnlab model, got {type(model).__name__}")
    get_entry(model)
    if weights is None and not quiet:
        notice(
            f"{model}: no weights given, so this is a randomly initialised network (its answers are "
            "guesses); "
            "pass weights: a run folder, a checkpoint or a pretrained tag such as 'imagenet'"
        )
    built = create_model(model, num_classes=num_classes, in_chans=in_chans, weights=weights)
    trained = _from_module(built, source=_describe(weights), run=run_config(model, weights))
    trained.temperature = saved_temperature(weights) if trained.run is not None else 1.0
    return trained


def saved_temperature(weights) -> float:
    """The temperature ``cnnlab interpret --save-temperature`` fitted for the run (1 when none is saved)."""
    p = Path(weights)
    record = read_json_object((p if p.is_dir() else p.parent) / "calibration.json") or {}
    value = record.get("temperature", 1.0)
    return float(value) if isinstance(value, int | float) and 0 < value < 1e3 else 1.0


def _from_module(model: nn.Module, source: str | None = None, run: dict | None = None) -> Trained:
    n = int(getattr(model, "num_classes", 0) or 0)
    names = getattr(model, "class_names", None)
    classes = list(names) if names is not None and len(names) == n else default_class_names(n)
    name = getattr(model, "model_name", "") or type(model).__name__
    return Trained(model.eval(), name, classes, model.default_cfg, source, run)


def _describe(weights) -> str | None:
    if weights is None:
        return None
    return os.fspath(weights) if isinstance(weights, str | os.PathLike) else "state_dict"


def model_and_weights(model, weights):
    """(model name or module or None, weights): a run folder or checkpoint given as the model is the
    weights (its model is read from it); ``"MODEL:WEIGHTS"`` (as evaluate's members are written) is
    the model and its weights."""
    if isinstance(model, os.PathLike) or (isinstance(model, str) and model not in list_models()
                                          and weights is None and Path(model).exists()):
        return None, os.fspath(model)
    if isinstance(model, str) and weights is None:
        name, _, spec = model.partition(":")
        if spec and name in list_models():
            return name, spec
    return model, weights


def model_of(weights) -> str:
    """The model name a run folder or a cnnlab checkpoint records (for commands given only weights)."""
    if weights is None:
        raise CnnlabError("give a model name, or weights (a run folder or a cnnlab checkpoint) that name it")
    if not isinstance(weights, str | os.PathLike) or not Path(weights).exists():
        raise CnnlabError(
            f"{weights!r} is neither a registered model nor an existing run folder or checkpoint; "
            "run `cnnlab models` to list the models"
        )
    p = Path(weights)
    run = read_json_object(p / "config.json") if p.is_dir() else None
    if run and isinstance(run.get("model"), str):
        return run["model"]
    from ..weights import read_weights

    try:
        name = read_weights(str(p)).metadata.get("model")
    except CheckpointError:
        name = None
    if not name:
        raise CnnlabError(
            f"{p} does not say which model it is for (not a cnnlab run or checkpoint); give the model "
            "name too"
        )
    return name


def run_config(model_name: str, weights) -> dict | None:
    """The config.json of the run folder that ``weights`` is (or lies in), if it is that model's run."""
    if not isinstance(weights, str | os.PathLike) or not Path(weights).exists():
        return None
    p = Path(weights)
    data = read_json_object((p if p.is_dir() else p.parent) / "config.json")
    return data if data and data.get("model") == model_name else None
