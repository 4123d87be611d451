"""BYOL's regression loss (Grill et al. 2020, arXiv 2006.07733)."""
from keras import ops

from sslzoo.losses.common import check_same_shape, f32, l2_normalize


def byol_loss(p, z):
    """L = 1/N Σ_n ‖p̄_n − z̄_n‖² = 1/N Σ_n (2 − 2·cos(p_n, z_n)).

    p: (N, D) online predictions; z: (N, D) target projections, held constant
    (stop-gradient). One direction only: a method symmetrises by adding byol_loss(p2, z1).
    The result lies in [0, 4].
    """
    check_same_shape(p, z, ("p", "z"))
    p, z = f32(p, z)
    cos = ops.sum(l2_normalize(p) * ops.stop_gradient(l2_normalize(z)), axis=1)
    return ops.mean(2.0 - 2.0 * cos)
