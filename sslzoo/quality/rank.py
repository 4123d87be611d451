"""RankMe (Garrido et al., ICML 2023, arXiv 2210.02885) and the entropy effective rank.

For non-negative values v_1..v_K (a spectrum), with ε a small constant:

    p_k = v_k / Σ_j v_j + ε,    erank(v) = exp(−Σ_k p_k log p_k)

    RankMe(z) = erank(σ(z)),    σ the min(n, d) singular values of the (n, d) embeddings z

erank lies in [1, K] up to ε: 1 for a single non-zero value, K for K equal ones. Everything is
computed in float32 whatever the input dtype; z is not centred (as in the paper).
"""
from keras import ops

from sslzoo.quality.checks import check_nonnegative, nan_unless, prepare

_TINY = 1e-30  # floor under Σ v, so that an all-zero spectrum gives p_k = ε (erank ≈ 1), not NaN


def entropy_effective_rank(values, eps=1e-7):
    """exp(−Σ_k p_k log p_k), p_k = v_k / Σ v + ε over the last axis of ``values``; float32.

    Negative values (round-off in an eigendecomposition) count as 0, and 0·log 0 as 0 (so
    eps=0 is allowed).
    """
    v = ops.maximum(ops.cast(values, "float32"), 0.0)
    p = v / ops.maximum(ops.sum(v, axis=-1, keepdims=True), _TINY) + eps
    plogp = ops.where(p > 0, p * ops.log(ops.where(p > 0, p, 1.0)), 0.0)
    return ops.exp(-ops.sum(plogp, axis=-1))


def rankme(z, eps=1e-7):
    """RankMe = exp(−Σ_k p_k log p_k), p_k = σ_k / Σ σ + ε, σ the singular values of z (n, d).

    n ≥ 2 embeddings, one per row (for a usable estimate the paper takes n well above d);
    ε ≥ 0. Returns a float32 scalar in [1, min(n, d)] up to ε.
    """
    check_nonnegative("eps (the ε added to each p_k)", eps, 1e-7)
    z, finite = prepare(z, "rankme", "(n, d)", {
        0: ("n", 2, "embeddings", "score a batch of embeddings, ideally n well above d"),
        1: ("d", 1, "embedding dimension", "pass non-empty embeddings")})
    sigma = ops.svd(z, full_matrices=False, compute_uv=False)
    return nan_unless(finite, entropy_effective_rank(sigma, float(eps)))
