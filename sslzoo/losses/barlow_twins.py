"""Barlow Twins' redundancy-reduction loss (Zbontar et al. 2021, arXiv 2103.03230)."""
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import batch_statistics_inputs

BN_EPS = 1e-5


def barlow_twins_loss(z1, z2, lambda_=0.0051, all_sum=None):
    """L = Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij²,  C = z̃1ᵀ z̃2 / N,

    with z̃ the (N, D) embeddings standardised over the batch (biased variance, eps 1e-5), so
    C is the (D, D) cross-correlation matrix. λ ≥ 0 (0 keeps only the invariance term).
    N must be at least 2 (a batch of one has no variance).

    Across replicas: pass ``all_sum=sslzoo.utils.replicas.all_sum``. z1, z2 are then this
    replica's rows, the means, variances and C are summed over the replicas (two all-reduces:
    the row count and sums, then the squared deviations and the D × D cross products), and
    every replica returns the global batch's loss.
    """
    if not lambda_ >= 0:
        raise ConfigError(f"lambda_ must be >= 0, got {lambda_!r}")
    z1, z2, total = batch_statistics_inputs(z1, z2, "barlow_twins_loss", all_sum)
    n, s1, s2 = total((ops.cast(ops.shape(z1)[0], "float32"), ops.sum(z1, axis=0),
                       ops.sum(z2, axis=0)))
    z1, z2 = z1 - s1 / n, z2 - s2 / n
    ss1, ss2, cross = total((ops.sum(ops.square(z1), axis=0), ops.sum(ops.square(z2), axis=0),
                             ops.matmul(ops.transpose(z1), z2)))
    # Standardising after the product: C_ij = Σ_n z1_ni z2_nj / (N σ1_i σ2_j).
    c = cross / (n * ops.outer(ops.sqrt(ss1 / n + BN_EPS), ops.sqrt(ss2 / n + BN_EPS)))
    eye = ops.eye(ops.shape(c)[0], dtype="float32")
    on_diag = ops.sum(ops.square(1.0 - ops.diagonal(c)))
    off_diag = ops.sum(ops.square(c) * (1.0 - eye))  # masked, not sum − diag: no cancellation
    return on_diag + lambda_ * off_diag
