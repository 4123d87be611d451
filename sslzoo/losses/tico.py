"""TiCo's transformation-invariance and covariance-contrast loss (Zhu et al. 2022,
arXiv 2206.10698)."""
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import check_same_shape, f32, l2_normalize


def tico_loss(z1, z2, C, beta=0.9, rho=20.0, all_sum=None):
    """(loss, new_C) for (N, D) embeddings z1 (online branch), z2 (momentum branch) and the
    running (D, D) covariance C of the online embeddings (zeros at the start).

    With ẑ the L2-normalised rows, the covariance is updated first and then used:

        new_C = β·C + (1 − β)·ẑ1ᵀẑ1 / N
        L = −1/N Σ_i ẑ1_i·ẑ2_i + ρ · 1/N Σ_i ẑ1_i new_C ẑ1_iᵀ

    In L the gradient flows through the batch's own part (1 − β)·ẑ1ᵀẑ1/N of new_C, as the
    public implementations do; C and the returned new_C (the state for the next step) carry
    none. z1 and z2 both receive gradient (the momentum branch that makes z2 is
    the caller's to stop). β = 0.9, ρ = 20 are the defaults of the public implementations
    (sayannag/TiCo-pytorch, lightly's TiCoLoss). 0 ≤ β < 1, ρ ≥ 0.

    Across replicas: pass ``all_sum=sslzoo.utils.replicas.all_sum``. The row count, Σ ẑ1·ẑ2 and
    ẑ1ᵀẑ1 are then summed over the replicas (one all-reduce), so every replica gets the global
    batch's new_C and loss.
    """
    if not 0 <= beta < 1:
        raise ConfigError(f"beta must be in [0, 1), got {beta!r} (beta = 1 never adds the batch)")
    if not rho >= 0:
        raise ConfigError(f"rho must be >= 0, got {rho!r}")
    check_same_shape(z1, z2)
    d, cs = tuple(z1.shape)[1], tuple(C.shape)
    if len(cs) != 2 or any(c is not None and d is not None and c != d for c in cs):
        raise ConfigError(f"C must be the (D, D) = ({d}, {d}) running covariance, got shape {cs}; "
                          "start it at zeros((D, D))")
    z1, z2, C = f32(z1, z2, C)
    u1, u2 = l2_normalize(z1), l2_normalize(z2)
    total = all_sum or (lambda x: x)
    n, agree, gram = total((ops.cast(ops.shape(u1)[0], "float32"), ops.sum(u1 * u2),
                            ops.matmul(ops.transpose(u1), u1)))
    c_t = beta * ops.stop_gradient(C) + (1.0 - beta) * gram / n
    # Σ_i ẑ_i C_t ẑ_iᵀ = Σ_ab C_t,ab (ẑᵀẑ)_ab: the gram matrix already summed. The gradient
    # flows through this batch's part of C_t (as the public implementations do); the stored
    # state carries none.
    return -agree / n + rho * ops.sum(c_t * gram) / n, ops.stop_gradient(c_t)
