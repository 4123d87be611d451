"""MoCo v3's symmetric in-batch contrastive loss (Chen, Xie & He 2021, arXiv 2104.02057)."""
from keras import ops

from sslzoo.losses.common import check_positive, check_same_shape, f32, l2_normalize


def _ctr(q, k, temperature):
    """ctr(q, k) = 2τ · CE(q·kᵀ/τ, labels = arange(N)), q and k normalised, k constant."""
    q = l2_normalize(q)
    k = ops.stop_gradient(l2_normalize(k))
    logits = ops.matmul(q, ops.transpose(k)) / temperature
    ce = ops.mean(ops.logsumexp(logits, axis=1) - ops.diagonal(logits))
    return 2.0 * temperature * ce


def mocov3_loss(q1, q2, k1, k2, temperature=0.2):
    """L = ctr(q1, k2) + ctr(q2, k1).

    q1, q2: (N, D) query-encoder (predictor) outputs of the two views; k1, k2: (N, D)
    momentum-encoder outputs of the same views. For query n the positive is key n of the
    other view and the other N−1 keys of the batch are negatives. The 2τ factor follows the
    paper's pseudocode; gradients do not flow into k1, k2.
    """
    check_positive("temperature", temperature)
    check_same_shape(q1, q2, ("q1", "q2"))
    check_same_shape(q1, k1, ("q1", "k1"))
    check_same_shape(q1, k2, ("q1", "k2"))
    q1, q2, k1, k2 = f32(q1, q2, k1, k2)
    return _ctr(q1, k2, temperature) + _ctr(q2, k1, temperature)
