"""EMP-SSL's loss (Tong, Chen, Ma & LeCun 2023, arXiv 2304.03977), with the normalisation of
the authors' code (github.com/tsb0601/EMP-SSL, main.py)."""
import math

from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.coding_rate import coding_rate
from sslzoo.losses.common import check_positive, l2_normalize, view_stack_inputs


def emp_ssl_loss(z, eps=0.2, inv_weight=200.0, all_gather=None):
    """L = −1/q Σ_j R(Z_j) − λ · 1/q Σ_j 1/n Σ_i cos(z_ij, z̄_i),

    z: (n, q, d), q ≥ 2 patches of each of n ≥ 2 images, L2-normalised here (the official
    projector's output is). Z_j (n, d) holds patch j of every image, z̄_i the mean of image i's
    q patches, and R the total coding rate R(Z) = ½ logdet(I + d/(n·eps) ZᵀZ) of
    ``sslzoo.losses.coding_rate`` at ε² = ``eps`` (the official code's ``eps`` is ε²).
    λ = ``inv_weight``. The defaults eps = 0.2 and λ = 200 are the paper's. The gradient flows
    through z̄ too, as in the official code.

    Across replicas: pass ``all_gather=sslzoo.utils.replicas.all_gather``. z is then this
    replica's images; the patches are gathered, so every replica returns the global batch's
    loss (each R over the global batch, as one device would).
    """
    check_positive("eps", eps)
    if not inv_weight >= 0:
        raise ConfigError(f"inv_weight must be >= 0, got {inv_weight!r}")
    u = view_stack_inputs(z, "emp_ssl_loss", "patches", all_gather)
    rates = coding_rate(ops.swapaxes(u, 0, 1), eps=math.sqrt(eps))         # (q,)
    centre = ops.mean(u, axis=1, keepdims=True)                             # (n, 1, d)
    cos = ops.sum(u * l2_normalize(centre), axis=-1)                        # (n, q)
    return -ops.mean(rates) - inv_weight * ops.mean(cos)
