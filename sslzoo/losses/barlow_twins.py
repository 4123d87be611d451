"""Barlow Twins' redundancy-reduction loss (Zbontar et al. 2021, arXiv 2103.03230)."""
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import check_same_shape, f32

BN_EPS = 1e-5


def _standardise(z):
    """Non-affine batch norm: zero mean, unit biased variance per dimension over the batch."""
    mean = ops.mean(z, axis=0, keepdims=True)
    var = ops.mean(ops.square(z - mean), axis=0, keepdims=True)
    return (z - mean) / ops.sqrt(var + BN_EPS)


def barlow_twins_loss(z1, z2, lambda_=0.0051):
    """L = Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij²,  C = z̃1ᵀ z̃2 / N,

    with z̃ the (N, D) embeddings standardised over the batch (biased variance, eps 1e-5), so
    C is the (D, D) cross-correlation matrix. λ ≥ 0 (0 keeps only the invariance term).
    N must be at least 2 (a batch of one has no variance).
    """
    if not lambda_ >= 0:
        raise ConfigError(f"lambda_ must be >= 0, got {lambda_!r}")
    check_same_shape(z1, z2)
    n = tuple(z1.shape)[0]
    if n is not None and n < 2:
        raise ConfigError(f"barlow_twins_loss needs a batch of at least 2, got N={n}")
    z1, z2 = f32(z1, z2)
    n = ops.cast(ops.shape(z1)[0], "float32")
    c = ops.matmul(ops.transpose(_standardise(z1)), _standardise(z2)) / n
    eye = ops.eye(ops.shape(c)[0], dtype="float32")
    on_diag = ops.sum(ops.square(1.0 - ops.diagonal(c)))
    off_diag = ops.sum(ops.square(c) * (1.0 - eye))  # masked, not sum − diag: no cancellation
    return on_diag + lambda_ * off_diag
