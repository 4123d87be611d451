"""SwAV's swapped-prediction loss and Sinkhorn-Knopp codes (Caron et al. 2020, arXiv 2006.09882)."""
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import check_positive, check_same_shape, f32
from sslzoo.utils.config import is_int


def sinkhorn_knopp(scores, epsilon=0.05, iterations=3):
    """Codes Q (N, K) for prototype scores (N, K), computed without gradient.

    Starting from exp(scores/ε) (the global max is subtracted first, which cancels), alternately
    rescale so each of the K prototypes holds mass 1/K and each of the N samples 1/N; the
    result is multiplied by N, so each row of Q sums to 1 and each column to about N/K
    (exactly in the limit of many iterations). Pass scores gathered over all replicas.
    """
    check_positive("epsilon", epsilon)
    if not is_int(iterations, 1):
        raise ConfigError(f"sinkhorn iterations must be an integer >= 1, got {iterations!r}")
    if len(tuple(scores.shape)) != 2:
        raise ConfigError(f"scores must be an (N, K) array, got shape {tuple(scores.shape)}")
    s = ops.stop_gradient(f32(scores))
    n = ops.cast(ops.shape(s)[0], "float32")
    k = ops.cast(ops.shape(s)[1], "float32")
    q = ops.exp((s - ops.max(s)) / epsilon)
    q = q / ops.sum(q)
    tiny = 1e-30  # keeps a prototype that every sample ignores at 0 instead of 0/0 = NaN
    for _ in range(iterations):
        q = q / (ops.maximum(ops.sum(q, axis=0, keepdims=True), tiny) * k)
        q = q / (ops.maximum(ops.sum(q, axis=1, keepdims=True), tiny) * n)
    return ops.stop_gradient(q * n)


def swav_loss(scores1, scores2, temperature=0.1, sinkhorn_iterations=3, epsilon=0.05,
              all_scores1=None, all_scores2=None, offset=0):
    """L = −½ [ 1/N Σ_n Σ_k q2_nk log p1_nk + 1/N Σ_n Σ_k q1_nk log p2_nk ],

    where p_v = softmax(scores_v / τ) and q_v = sinkhorn_knopp(scores_v, ε, iterations): each
    view predicts the other view's codes. scores1, scores2: (N, K) prototype scores.

    Across replicas: ``all_scores1``, ``all_scores2`` (N_g, K) are the global batch's scores
    and scores1, scores2 its rows [offset, offset + N). Sinkhorn-Knopp then runs over the
    global batch and the local rows take their rows of its codes, so the replicas' losses
    average to the global loss (the codes carry no gradient).
    """
    check_positive("temperature", temperature)
    check_same_shape(scores1, scores2, ("scores1", "scores2"))
    scores1, scores2 = f32(scores1, scores2)
    if all_scores1 is None:
        all_scores1, all_scores2 = scores1, scores2
    n = ops.shape(scores1)[0]
    q1 = replica_rows(sinkhorn_knopp(all_scores1, epsilon, sinkhorn_iterations), offset, n)
    q2 = replica_rows(sinkhorn_knopp(all_scores2, epsilon, sinkhorn_iterations), offset, n)
    return swapped_prediction(scores1, scores2, q1, q2, temperature)


def swapped_prediction(scores1, scores2, q1, q2, temperature):
    """−½ [ 1/N Σ_n Σ_k q2_nk log p1_nk + 1/N Σ_n Σ_k q1_nk log p2_nk ] with
    p_v = softmax(scores_v / τ): each view's scores predict the other view's codes q (given, for
    example computed with a queue)."""
    logp1 = ops.log_softmax(scores1 / temperature, axis=1)
    logp2 = ops.log_softmax(scores2 / temperature, axis=1)
    ce12 = -ops.mean(ops.sum(q2 * logp1, axis=1))
    ce21 = -ops.mean(ops.sum(q1 * logp2, axis=1))
    return 0.5 * (ce12 + ce21)


def replica_rows(x, offset, n):
    """Rows [offset, offset + n) of ``x``: a replica's share of a gathered (N_g, K) array."""
    return ops.slice(x, [ops.cast(offset, "int32"), 0], [n, ops.shape(x)[1]])
