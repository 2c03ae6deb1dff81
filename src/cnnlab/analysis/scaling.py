"""EfficientNet compound scaling beside the released B0-B7: Tan and Le, "EfficientNet: Rethinking
Model Scaling for Convolutional Neural Networks", arXiv:1905.11946, section 3.3.

The model file holds the data (the released table and the coefficients); this module holds the
formula and the report that ``cnnlab models --scaling`` prints.
"""

from __future__ import annotations

from ..models.efficientnet import ALPHA, B_FLAVOUR, B_VARIANTS, BETA, GAMMA, stage_depths

BASE_RESOLUTION = 224  # B0's input, pixels


def compound_scaling(phi: float, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA):
    """The paper's eq. 3: (depth, width, resolution) multipliers alpha^phi, beta^phi, gamma^phi.

    With alpha * beta^2 * gamma^2 ~ 2, the MACs grow by about 2^phi.
    """
    return alpha**phi, beta**phi, gamma**phi


def scaling_table() -> str:
    """The compound-scaling formula for phi = 0..7 beside the released B0-B7 rows."""
    lines = [f"EfficientNet compound scaling: depth {ALPHA}^phi, width {BETA}^phi, resolution {GAMMA}^phi "
             f"(x {BASE_RESOLUTION} px); MACs grow ~2^phi",
             f"{'model':<16}{'phi':>4} | {'formula: depth':>14}{'width':>7}{'res':>6} | "
             f"{'released: depth':>15}{'width':>7}{'res':>6}{'dropout':>9}{'stages':>24}"]
    for phi, (name, v) in enumerate(B_VARIANTS.items()):
        d, w, r = compound_scaling(phi)
        depths = ",".join(map(str, stage_depths(v, B_FLAVOUR)))
        lines.append(f"{name:<16}{phi:>4} | {d:>14.2f}{w:>7.2f}{BASE_RESOLUTION * r:>6.0f} | "
                     f"{v.depth:>15.1f}{v.width:>7.1f}{v.resolution:>6}{v.drop_rate:>9.1f}{depths:>24}")
    lines.append("The released B1-B7 round the formula by hand (the paper's grid search fixed only B0's "
                 "alpha, beta, gamma).")
    return "\n".join(lines)
