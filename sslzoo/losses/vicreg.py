"""VICReg's variance-invariance-covariance loss (Bardes, Ponce & LeCun 2021, arXiv 2105.04906),
with the normalisations of the authors' official code."""
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import batch_statistics_inputs, check_positive


def _var_cov(cov, eps):
    """Variance hinge mean_d relu(1 − sqrt(Var_d + eps)) and Σ_{i≠j} Cov_ij² / D of a (D, D)
    covariance matrix."""
    d = ops.shape(cov)[0]
    var_term = ops.mean(ops.relu(1.0 - ops.sqrt(ops.diagonal(cov) + eps)))
    off = ops.square(cov) * (1.0 - ops.eye(d, dtype="float32"))
    return var_term, ops.sum(off) / ops.cast(d, "float32")


def vicreg_terms(z1, z2, eps=1e-4, all_sum=None):
    """(invariance, variance, covariance) for (N, D) embeddings z1, z2, N ≥ 2.

    invariance = 1/(N·D) Σ ‖z1 − z2‖²;  variance = ½ [v(z1) + v(z2)] (averaged over the
    branches);  covariance = c(z1) + c(z2) (summed), as in the official implementation;
    variances and covariances are unbiased.

    Across replicas: pass ``all_sum=sslzoo.utils.replicas.all_sum``. z1, z2 are then this
    replica's rows, the row count, sums and D × D cross products are summed over the
    replicas (two all-reduces), and every replica returns the global batch's terms.
    """
    check_positive("eps", eps)
    z1, z2, total = batch_statistics_inputs(z1, z2, "vicreg_loss", all_sum,
                                            " (unbiased variance)")
    n, s1, s2, sq = total((ops.cast(ops.shape(z1)[0], "float32"), ops.sum(z1, axis=0),
                           ops.sum(z2, axis=0), ops.sum(ops.square(z1 - z2))))
    inv = sq / (n * ops.cast(ops.shape(z1)[1], "float32"))
    z1, z2 = z1 - s1 / n, z2 - s2 / n
    cov1, cov2 = total((ops.matmul(ops.transpose(z1), z1), ops.matmul(ops.transpose(z2), z2)))
    v1, c1 = _var_cov(cov1 / (n - 1.0), eps)
    v2, c2 = _var_cov(cov2 / (n - 1.0), eps)
    return inv, 0.5 * (v1 + v2), c1 + c2


def vicreg_loss(z1, z2, sim_weight=25.0, var_weight=25.0, cov_weight=1.0, eps=1e-4,
                all_sum=None):
    """L = λ·invariance + μ·variance + ν·covariance (see vicreg_terms, also for ``all_sum``).

    The weights must be ≥ 0 (0 switches a term off, as in the paper's ablations); eps > 0.
    """
    weights = {"sim_weight": sim_weight, "var_weight": var_weight, "cov_weight": cov_weight}
    for name, w in weights.items():
        if not w >= 0:
            raise ConfigError(f"{name} must be >= 0, got {w!r}")
    inv, var, cov = vicreg_terms(z1, z2, eps, all_sum)
    return sim_weight * inv + var_weight * var + cov_weight * cov
