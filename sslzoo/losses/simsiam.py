"""SimSiam's negative cosine similarity (Chen & He 2020, arXiv 2011.10566)."""
from keras import ops

from sslzoo.losses.common import check_same_shape, f32, l2_normalize


def simsiam_loss(p, z):
    """D(p, z) = −1/N Σ_n cos(p_n, stopgrad(z_n)).

    p: (N, D) predictor outputs; z: (N, D) projections of the other view (no gradient).
    One direction only: a method symmetrises as ½D(p1, z2) + ½D(p2, z1). Range [−1, 1].
    """
    check_same_shape(p, z, ("p", "z"))
    p, z = f32(p, z)
    cos = ops.sum(l2_normalize(p) * ops.stop_gradient(l2_normalize(z)), axis=1)
    return -ops.mean(cos)
