"""Vision Transformer: Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale", arXiv:2010.11929 (Table 1: the Base and Large rows).

An image is cut into P x P patches, each projected linearly (a P x P convolution of stride P) to a
``dim``-vector; a learned class token is prepended, learned 1-D position embeddings are added, and
``depth`` pre-norm transformer blocks (LayerNorm -> multi-head self-attention -> residual,
LayerNorm -> MLP with GELU -> residual) follow. The class token's final state, after a LayerNorm,
is classified.

Parameter names are torchvision's ``VisionTransformer`` (``conv_proj``, ``class_token``,
``encoder.pos_embedding``, ``encoder.layers.encoder_layer_N.{ln_1, self_attention.in_proj_weight,
self_attention.in_proj_bias, self_attention.out_proj, ln_2, mlp.0, mlp.3}``, ``encoder.ln``,
``heads.head``), so torchvision checkpoints load unchanged. timm's ``VisionTransformer`` checkpoints
(``vit_tiny/small/base_patch16_224``, ``vit_base_patch32_224``, ``vit_large_patch16_224``) are renamed
by ``convert_state_dict`` (``TIMM_RENAMES``); their fused ``qkv`` has the same row packing as
``in_proj_weight`` (q, k, v blocks, each split into heads in order), so no tensor is permuted.

Deviations and sources:

* Head: one linear layer on the class token (torchvision's, and the paper's fine-tuning head); the
  paper pre-trains with an MLP head of one tanh hidden layer. The head starts at zero (torchvision).
* ``vit_ti_16`` and ``vit_s_16`` are not in the paper: they are the Tiny/Small rows of Touvron et al.
  (DeiT, arXiv:2012.12877): dim 192/384, 3/6 heads, depth 12, MLP 4x.
* Attention is written out with ``scaled_dot_product_attention`` on (B, heads, N, head_dim) tensors
  (all heads at once), not ``nn.MultiheadAttention``, so the matmuls are visible to MAC counters;
  the parameters keep ``nn.MultiheadAttention``'s names.
* Other input sizes: the position embeddings of the patch grid are resized bicubically (the class
  token's embedding is kept), at run time and when loading a checkpoint made for another size
  (the paper's "2D interpolation of the pre-trained position embeddings", section 3.2).
* ``drop_path_rate`` adds stochastic depth (DeiT's recipe; 0 by default, as in the paper);
  ``block_drop_rate`` is the dropout after the position embeddings, the attention and in the MLP
  (torchvision's ``dropout``, the paper's 0.1 for ImageNet training; 0 by default).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnlabError
from ..registry import register_model
from .base import ClassifierModel, DataConfig, Stage
from .layers import DropPath, init_weights, renamed_kwarg, transformer_mlp


class ViTConfig(NamedTuple):
    patch: int  # patch side in pixels
    dim: int  # token width D
    depth: int  # transformer blocks L
    heads: int
    mlp: int  # hidden width of the MLP


VIT_CONFIGS: dict[str, ViTConfig] = {
    "vit_ti_16": ViTConfig(16, 192, 12, 3, 768),
    "vit_s_16": ViTConfig(16, 384, 12, 6, 1536),
    "vit_b_16": ViTConfig(16, 768, 12, 12, 3072),
    "vit_b_32": ViTConfig(32, 768, 12, 12, 3072),
    "vit_l_16": ViTConfig(16, 1024, 24, 16, 4096),
}
# timm key -> ours (first matching rule wins); keys no rule matches pass unchanged, so a timm variant
# with other parts (fc_norm, reg_token, layer scale) fails the strict load instead of loading wrongly
_BLOCK = r"encoder.layers.encoder_layer_\1"
TIMM_RENAMES: tuple[tuple[str, str], ...] = (
    (r"cls_token", "class_token"),
    (r"pos_embed", "encoder.pos_embedding"),
    (r"patch_embed\.proj\.(weight|bias)", r"conv_proj.\1"),
    (r"blocks\.(\d+)\.norm1\.(weight|bias)", _BLOCK + r".ln_1.\2"),
    (r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)", _BLOCK + r".self_attention.in_proj_\2"),
    (r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", _BLOCK + r".self_attention.out_proj.\2"),
    (r"blocks\.(\d+)\.norm2\.(weight|bias)", _BLOCK + r".ln_2.\2"),
    (r"blocks\.(\d+)\.mlp\.fc1\.(weight|bias)", _BLOCK + r".mlp.0.\2"),
    (r"blocks\.(\d+)\.mlp\.fc2\.(weight|bias)", _BLOCK + r".mlp.3.\2"),
    (r"norm\.(weight|bias)", r"encoder.ln.\1"),
    (r"head\.(weight|bias)", r"heads.head.\1"),
)
NUM_STAGES = 4  # the blocks are reported as 4 equal groups (stages) for freezing / features
LN_EPS = 1e-6  # torchvision's ViT LayerNorm epsilon


def resize_pos_embedding(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(1, 1 + g*g, D) -> (1, 1 + gh*gw, D): bicubic resize of the patch grid, class token kept."""
    n = pos.shape[1] - 1
    side = math.isqrt(n)
    if side * side != n:
        raise CnnlabError(f"position embedding of {n} patches is not a square grid; cannot resize it")
    if (side, side) == tuple(grid):
        return pos
    cls_pos, patch_pos = pos[:, :1], pos[:, 1:]
    patch_pos = patch_pos.transpose(1, 2).reshape(1, -1, side, side)  # (1, D, g, g)
    patch_pos = F.interpolate(patch_pos, size=tuple(grid), mode="bicubic", align_corners=True)
    return torch.cat([cls_pos, patch_pos.flatten(2).transpose(1, 2)], dim=1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter names."""

    def __init__(self, dim: int, heads: int, attention_dropout: float = 0.0) -> None:
        super().__init__()
        self.heads, self.attention_dropout = heads, attention_dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))  # rows: q, k, v
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, N, d) each
        p = self.attention_dropout if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.out_proj(x.transpose(1, 2).reshape(b, n, c))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + MSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, cfg: ViTConfig, block_drop_rate: float, attention_dropout: float,
                 drop_path: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.dim, eps=LN_EPS)
        self.self_attention = SelfAttention(cfg.dim, cfg.heads, attention_dropout)
        self.dropout = nn.Dropout(block_drop_rate)
        self.ln_2 = nn.LayerNorm(cfg.dim, eps=LN_EPS)
        self.mlp = transformer_mlp(cfg.dim, cfg.mlp, block_drop_rate)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.dropout(self.self_attention(self.ln_1(x))))
        return x + self.drop_path(self.mlp(self.ln_2(x)))


class Encoder(nn.Module):
    """Position embeddings + the block stack + the final LayerNorm (torchvision's ``encoder``)."""

    def __init__(self, cfg: ViTConfig, seq_length: int, block_drop_rate: float, attention_dropout: float,
                 drop_path_rate: float) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, cfg.dim).normal_(std=0.02))
        self.dropout = nn.Dropout(block_drop_rate)
        rates = [drop_path_rate * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]
        self.layers = nn.Sequential(OrderedDict(
            (f"encoder_layer_{i}", EncoderBlock(cfg, block_drop_rate, attention_dropout, rates[i]))
            for i in range(cfg.depth)))
        self.ln = nn.LayerNorm(cfg.dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        x = x + resize_pos_embedding(self.pos_embedding, grid)
        return self.ln(self.layers(self.dropout(x)))


class VisionTransformer(ClassifierModel):
    """ViT with a class-token head; ``forward_features`` returns all tokens (B, 1 + N, D)."""

    classifier_path = "heads.head"

    def __init__(self, cfg: ViTConfig, num_classes: int = 1000, in_chans: int = 3, image_size: int = 224,
                 block_drop_rate: float = 0.0, attention_dropout: float = 0.0, drop_path_rate: float = 0.0,
                 crop_pct: float = 0.875) -> None:
        super().__init__()
        if image_size % cfg.patch:
            raise CnnlabError(f"image_size {image_size} is not divisible by the patch size {cfg.patch}; "
                              f"pick a multiple of {cfg.patch}")
        self.cfg, self.patch_size, self.image_size = cfg, cfg.patch, image_size
        self.num_classes, self.num_features = num_classes, cfg.dim
        self.conv_proj = nn.Conv2d(in_chans, cfg.dim, cfg.patch, stride=cfg.patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.grid = image_size // cfg.patch
        self.encoder = Encoder(cfg, self.grid**2 + 1, block_drop_rate, attention_dropout, drop_path_rate)
        self.heads = nn.Sequential(
            OrderedDict(head=nn.Linear(cfg.dim, num_classes) if num_classes else nn.Identity())
        )
        # torchvision's: patch projection truncated-normal with std 1/sqrt(fan_in), zero head
        init_weights(self, conv="lecun_trunc_normal", zero_linear_bias=False, zero_head=True)
        per = cfg.depth // NUM_STAGES
        self.stages = tuple(Stage(f"encoder.layers.encoder_layer_{per * (i + 1) - 1}", cfg.dim, cfg.patch)
                            for i in range(NUM_STAGES))
        self.default_cfg = DataConfig((in_chans, image_size, image_size), crop_pct=crop_pct).with_channels(
            in_chans
        )

    def patchify(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(B, C, H, W) -> tokens (B, H/P * W/P, D) and the patch grid (H/P, W/P)."""
        h, w = x.shape[-2:]
        p = self.patch_size
        if h % p or w % p:
            raise CnnlabError(
                f"input size {h}x{w} is not divisible by the patch size {p} of "
                f"{self.model_name or 'this ViT'}; resize to a multiple of {p} (e.g. {self.image_size})"
            )
        x = self.conv_proj(x)  # (B, D, H/P, W/P)
        return x.flatten(2).transpose(1, 2), (h // p, w // p)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x, grid = self.patchify(x)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.encoder(x, grid)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x[:, 0]  # the class token
        return x if pre_logits else self.heads.head(x)

    def convert_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename timm keys to ours; resize position embeddings made for another image size to this
        model's."""
        if "cls_token" in sd or "pos_embed" in sd:
            sd = {_rename_timm_key(k): v for k, v in sd.items()}
        key = "encoder.pos_embedding"
        pos = sd.get(key)
        if pos is not None and pos.ndim == 3 and pos.shape[1] != self.encoder.pos_embedding.shape[1]:
            sd = {**sd, key: resize_pos_embedding(pos.float(), (self.grid, self.grid)).to(pos.dtype)}
        return sd


def _rename_timm_key(key: str) -> str:
    for pattern, repl in TIMM_RENAMES:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return key


PAPER = "Dosovitskiy et al. 2020, arXiv:2010.11929"
DEIT = "Touvron et al. 2020 (DeiT sizes), arXiv:2012.12877; ViT: arXiv:2010.11929"
CROP = {"vit_l_16": 224 / 242}  # torchvision's eval resize 242 -> 224; the others 256 -> 224


def _vit(name: str, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VisionTransformer:
    renamed_kwarg(kwargs, "dropout", "block_drop_rate", name)
    kwargs.setdefault("crop_pct", CROP.get(name, 0.875))
    return VisionTransformer(VIT_CONFIGS[name], num_classes, in_chans, **kwargs)


@register_model(family="vit", paper=DEIT, loads=("timm:vit_tiny_patch16_224",))
def vit_ti_16(**kwargs) -> VisionTransformer:
    """ViT-Ti/16 (DeiT-Tiny): dim 192, depth 12, 3 heads, MLP 768."""
    return _vit("vit_ti_16", **kwargs)


@register_model(family="vit", paper=DEIT, loads=("timm:vit_small_patch16_224",))
def vit_s_16(**kwargs) -> VisionTransformer:
    """ViT-S/16 (DeiT-Small): dim 384, depth 12, 6 heads, MLP 1536."""
    return _vit("vit_s_16", **kwargs)


@register_model(family="vit", paper=PAPER, loads=("torchvision:vit_b_16", "timm:vit_base_patch16_224"))
def vit_b_16(**kwargs) -> VisionTransformer:
    """ViT-B/16: dim 768, depth 12, 12 heads, MLP 3072."""
    return _vit("vit_b_16", **kwargs)


@register_model(family="vit", paper=PAPER, loads=("torchvision:vit_b_32", "timm:vit_base_patch32_224"))
def vit_b_32(**kwargs) -> VisionTransformer:
    """ViT-B/32: dim 768, depth 12, 12 heads, MLP 3072."""
    return _vit("vit_b_32", **kwargs)


@register_model(family="vit", paper=PAPER, loads=("torchvision:vit_l_16", "timm:vit_large_patch16_224"))
def vit_l_16(**kwargs) -> VisionTransformer:
    """ViT-L/16: dim 1024, depth 24, 16 heads, MLP 4096."""
    return _vit("vit_l_16", **kwargs)
