"""Swin Transformer: Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted
Windows", arXiv:2103.14030 (section 3, Table 7 / section 3.3 for the T/S/B variants).

A 4x4 patch embedding, then four stages of Swin blocks at strides 4, 8, 16, 32 joined by patch
merging (2x2 neighbours concatenated, LayerNorm, linear 4C -> 2C). Each block is pre-norm:
x + W-MSA(LN(x)), x + MLP(LN(x)); every second block shifts the windows by half a window
(cyclic roll + an attention mask that keeps tokens of different original regions apart). Attention
inside each M x M window (M = 7) adds a learned relative position bias B[(dy, dx), head] read from a
(2M-1)^2-row table through a fixed index buffer.

Parameter names are torchvision's Swin V1 (``features.0`` patch embedding, ``features.1/3/5/7``
stages, ``features.2/4/6`` ``PatchMerging``, ``norm``, ``head``), so its checkpoints load unchanged.
timm's ``swin_{tiny,small,base}_patch4_window7_224`` checkpoints are renamed by ``convert_state_dict``:
``layers.S.blocks.J`` -> ``features.(2S+1).J``, ``mlp.fc1/fc2`` -> ``mlp.0/3``, ``head.fc`` -> ``head``.
timm >= 0.9 puts patch merging at the start of stages 2-4 (``layers.1-3.downsample``); the original
release and older timm files at the end of stages 1-3 (``layers.0-2.downsample``, ``head``); both are
read. Their 2x2 concatenation order, ``qkv`` packing and bias-table layout are ours, so no tensor is
permuted; the ``relative_position_index``/``attn_mask`` buffers they may hold are dropped (ours are
computed), after checking that the bias tables are for 7 x 7 windows.

Implementation notes (no change to the maths):

* Features are channels-last (B, H, W, C) inside, as in torchvision; the stage outputs are
  channels-last too, while ``forward_features`` returns the normed final map as (B, C, H, W).
* Window attention runs for all windows and heads at once: ``scaled_dot_product_attention`` on
  (B * windows, heads, M*M, head_dim) tensors (4-D, which every backend and the ONNX exporter take),
  with bias + shift mask as its additive ``attn_mask``.
  The mask value is -100 (the reference code's), not -inf.
* Other input sizes: maps are padded at the bottom/right to window multiples; a map no larger than
  the window is not shifted (torchvision's rule), and patch merging pads odd sizes.
* Stochastic depth (Huang et al., arXiv:1603.09382) rises linearly from 0 to ``drop_path_rate``
  (0.2 / 0.3 / 0.5 for T / S / B, as in the paper's training recipe).
* ``block_drop_rate`` is the dropout after the attention projection and in the MLP (torchvision's
  ``dropout``), 0 by default; ``attention_dropout`` drops attention weights.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError
from ..registry import register_model
from .base import ClassifierModel, DataConfig, Stage
from .layers import DropPath, init_weights, renamed_kwarg, transformer_mlp


class SwinConfig(NamedTuple):
    embed_dim: int  # C of the first stage; doubles every stage
    depths: tuple[int, ...]  # blocks per stage
    heads: tuple[int, ...]  # attention heads per stage
    drop_path_rate: float  # the paper's stochastic depth for ImageNet-1k training
    crop_pct: float  # torchvision's eval crop: 224 / resize


SWIN_CONFIGS: dict[str, SwinConfig] = {
    "swin_t": SwinConfig(96, (2, 2, 6, 2), (3, 6, 12, 24), 0.2, 224 / 232),
    "swin_s": SwinConfig(96, (2, 2, 18, 2), (3, 6, 12, 24), 0.3, 224 / 246),
    "swin_b": SwinConfig(128, (2, 2, 18, 2), (4, 8, 16, 32), 0.5, 224 / 238),
}
PATCH = 4  # patch embedding stride (pixels)
WINDOW = 7  # window side M (tokens)
MLP_RATIO = 4
MASK_VALUE = -100.0  # added to attention logits between tokens of different shifted regions
TIMM_BLOCK_PARTS = {"mlp.fc1": "mlp.0", "mlp.fc2": "mlp.3"}  # the rest of a timm block's names are ours
TIMM_BUFFERS = ("relative_position_index", "attn_mask")  # computed here, never read from a file


def window_partition(x: torch.Tensor, m: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, H/m * W/m, m*m, C)."""
    b, h, w, c = x.shape
    x = x.view(b, h // m, m, w // m, m, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // m) * (w // m), m * m, c)


def window_merge(x: torch.Tensor, m: int, h: int, w: int) -> torch.Tensor:
    """(B, H/m * W/m, m*m, C) -> (B, H, W, C), the inverse of :func:`window_partition`."""
    b, c = x.shape[0], x.shape[-1]
    x = x.view(b, h // m, w // m, m, m, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shift_mask(h: int, w: int, m: int, shift: tuple[int, int], device) -> torch.Tensor:
    """(windows, m*m, m*m) additive mask: 0 within a region of the un-rolled map, -100 across.

    After the cyclic roll the map falls into up to 3 x 3 regions (split at h - m and h - shift);
    tokens of different regions were not neighbours before the roll.
    """
    def region(n: int, s: int) -> torch.Tensor:
        i = torch.arange(n, device=device)
        return (i >= n - m).long() + (i >= n - s).long() if s else torch.zeros_like(i)

    label = region(h, shift[0])[:, None] * 3 + region(w, shift[1])[None, :]  # (H, W)
    label = window_partition(label[None, :, :, None], m)[0, :, :, 0]  # (windows, m*m)
    differ = label[:, :, None] != label[:, None, :]
    return differ.float() * MASK_VALUE


def relative_position_index(m: int) -> torch.Tensor:
    """(m^4,) row of the bias table for each (query, key) pair of a window: (dy + m-1)(2m-1) + dx + m-1."""
    yy, xx = torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")
    yx = torch.stack([yy.flatten(), xx.flatten()])  # (2, m*m)
    d = yx[:, :, None] - yx[:, None, :] + (m - 1)  # (2, m*m, m*m), each in [0, 2m-2]
    return (d[0] * (2 * m - 1) + d[1]).flatten()


class ShiftedWindowAttention(nn.Module):
    """(Shifted-)window multi-head self-attention with relative position bias; x is (B, H, W, C)."""

    def __init__(self, dim: int, heads: int, window: int, shift: int, attention_dropout: float = 0.0,
                 block_drop_rate: float = 0.0) -> None:
        super().__init__()
        self.heads, self.window, self.shift = heads, window, shift
        self.attention_dropout = attention_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(block_drop_rate)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window))

    def position_bias(self) -> torch.Tensor:
        n = self.window**2
        bias = self.relative_position_bias_table[self.relative_position_index].view(n, n, self.heads)
        return bias.permute(2, 0, 1)  # (heads, n, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        m = self.window
        x = F.pad(x, (0, 0, 0, -w % m, 0, -h % m))  # bottom/right padding to window multiples
        ph, pw = x.shape[1:3]
        shift = (self.shift if ph > m else 0, self.shift if pw > m else 0)
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        win = window_partition(x, m)  # (B, nW, n, C)
        nw, n = win.shape[1:3]
        qkv = self.qkv(win).view(b, nw, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).flatten(1, 2)  # each (B * nW, heads, n, d)
        mask = self.position_bias()  # (heads, n, n), broadcast over batch and windows
        if any(shift):
            mask = mask + shift_mask(ph, pw, m, shift, x.device)[:, None].to(mask.dtype)  # (nW, heads, n, n)
            mask = mask.expand(b, -1, -1, -1, -1).flatten(0, 1)  # (B * nW, heads, n, n)
        p = self.attention_dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), dropout_p=p)
        out = out.transpose(1, 2)  # (B * nW, n, heads, d)
        if torch.compiler.is_exporting():  # the exporter may decompose SDPA into another memory layout
            out = out.clone(memory_format=torch.contiguous_format)  # than the one the graph's view saw
        out = self.proj_drop(self.proj(out.reshape(b, nw, n, c)))
        x = window_merge(out, m, ph, pw)
        if any(shift):
            x = torch.roll(x, shifts=shift, dims=(1, 2))
        return x[:, :h, :w]


class SwinBlock(nn.Module):
    """x + DropPath(W-MSA(LN(x))), then x + DropPath(MLP(LN(x))); channels-last."""

    def __init__(self, dim: int, heads: int, shift: int, drop_path: float, block_drop_rate: float = 0.0,
                 attention_dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ShiftedWindowAttention(dim, heads, WINDOW, shift, attention_dropout, block_drop_rate)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = transformer_mlp(dim, MLP_RATIO * dim, block_drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """(B, H, W, C) -> (B, H/2, W/2, 2C): concatenate 2x2 neighbours, LayerNorm(4C), linear 4C -> 2C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[1:3]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        # order (row, col) = (0,0), (1,0), (0,1), (1,1): the reference code's, which its weights assume
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class ToChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


class SwinTransformer(ClassifierModel):
    """Swin V1; ``features`` holds the embedding, stages and merges at torchvision's indices."""

    classifier_path = "head"

    def __init__(self, cfg: SwinConfig, num_classes: int = 1000, in_chans: int = 3,
                 drop_path_rate: float | None = None, block_drop_rate: float = 0.0,
                 attention_dropout: float = 0.0) -> None:
        super().__init__()
        rate = cfg.drop_path_rate if drop_path_rate is None else drop_path_rate
        total = sum(cfg.depths)
        rates = [rate * i / max(total - 1, 1) for i in range(total)]
        dims = [cfg.embed_dim * 2**i for i in range(len(cfg.depths))]
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_chans, dims[0], PATCH, stride=PATCH),
                                                 ToChannelsLast(), nn.LayerNorm(dims[0]))]
        stages = []
        for i, (dim, depth, heads) in enumerate(zip(dims, cfg.depths, cfg.heads)):
            first = sum(cfg.depths[:i])
            layers.append(nn.Sequential(*(
                SwinBlock(dim, heads, 0 if j % 2 == 0 else WINDOW // 2, rates[first + j], block_drop_rate,
                          attention_dropout)
                for j in range(depth))))
            stages.append(Stage(f"features.{len(layers) - 1}", dim, PATCH * 2**i))
            if i < len(dims) - 1:
                layers.append(PatchMerging(dim))
        self.features = nn.Sequential(*layers)
        self.num_classes, self.num_features = num_classes, dims[-1]
        self.norm = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], num_classes) if num_classes else nn.Identity()
        init_weights(
            self, linear="trunc_normal_0.02", zero_conv_bias=False
        )  # torchvision's: linear layers only
        self.stages = tuple(stages)
        self.default_cfg = DataConfig(interpolation="bicubic", crop_pct=cfg.crop_pct).with_channels(in_chans)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.features(x))  # (B, H/32, W/32, C)
        return x.permute(0, 3, 1, 2)  # (B, C, H/32, W/32)

    def convert_state_dict(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename a timm Swin state_dict to ours; torchvision's passes through unchanged."""
        if "patch_embed.proj.weight" not in sd:
            return sd
        merge_at_end = "layers.0.downsample.reduction.weight" in sd  # original / old-timm layout
        out = {}
        for k, v in sd.items():
            if k.rpartition(".")[2] in TIMM_BUFFERS:
                continue
            if k.endswith("relative_position_bias_table") and v.shape[0] != (2 * WINDOW - 1) ** 2:
                side = (round(v.shape[0] ** 0.5) + 1) // 2
                raise CheckpointError(
                    f"{k} is for {side}x{side} windows; {self.model_name or 'this Swin'} has "
                    f"{WINDOW}x{WINDOW} windows: use a timm *_window{WINDOW}_224 checkpoint"
                )
            out[_timm_swin_key(k, merge_at_end)] = v
        out.update({k: v for k, v in self.state_dict().items() if k.endswith("relative_position_index")})
        return out


def _timm_swin_key(key: str, merge_at_end: bool) -> str:
    """One timm key -> ours (unknown keys unchanged, so that the strict load reports them)."""
    if key.startswith("patch_embed."):
        return key.replace("patch_embed.proj.", "features.0.0.").replace("patch_embed.norm.", "features.0.2.")
    if key.startswith("head.fc."):
        return "head." + key[len("head.fc."):]
    m = re.fullmatch(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)\.(weight|bias|relative_position_bias_table)", key)
    if m:
        stage, block, part, leaf = m.groups()
        part = TIMM_BLOCK_PARTS.get(part, part)
        return f"features.{2 * int(stage) + 1}.{block}.{part}.{leaf}"
    m = re.fullmatch(r"layers\.(\d+)\.downsample\.(.+)", key)
    if m:  # merging after stage S (old) or before stage S (new) sits at features.2S+2 or features.2S
        return f"features.{2 * int(m.group(1)) + (2 if merge_at_end else 0)}.{m.group(2)}"
    return key


PAPER = "Liu et al. 2021, arXiv:2103.14030"


def _swin(name: str, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> SwinTransformer:
    renamed_kwarg(kwargs, "dropout", "block_drop_rate", name)
    return SwinTransformer(SWIN_CONFIGS[name], num_classes, in_chans, **kwargs)


@register_model(family="swin", paper=PAPER, loads=("torchvision:swin_t", "timm:swin_tiny_patch4_window7_224"))
def swin_t(**kwargs) -> SwinTransformer:
    """Swin-T: C = 96, depths (2, 2, 6, 2), heads (3, 6, 12, 24), window 7."""
    return _swin("swin_t", **kwargs)


@register_model(family="swin", paper=PAPER,
                loads=("torchvision:swin_s", "timm:swin_small_patch4_window7_224"))
def swin_s(**kwargs) -> SwinTransformer:
    """Swin-S: C = 96, depths (2, 2, 18, 2), heads (3, 6, 12, 24), window 7."""
    return _swin("swin_s", **kwargs)


@register_model(family="swin", paper=PAPER, loads=("torchvision:swin_b", "timm:swin_base_patch4_window7_224"))
def swin_b(**kwargs) -> SwinTransformer:
    """Swin-B: C = 128, depths (2, 2, 18, 2), heads (4, 8, 16, 32), window 7."""
    return _swin("swin_b", **kwargs)
