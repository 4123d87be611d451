"""MoCo v3's symmetric in-batch contrastive loss (Chen, Xie & He 2021, arXiv 2104.02057)."""
from keras import ops

from sslzoo.losses.common import check_positive, check_same_shape, f32, l2_normalize


def _ctr(q, k, temperature, offset=0):
    """ctr(q, k) = 2τ · CE(q·kᵀ/τ, labels = offset + arange(N)), q and k normalised, k
    constant; k may hold more rows than q (the global batch's keys)."""
    q = l2_normalize(q)
    k = ops.stop_gradient(l2_normalize(k))
    logits = ops.matmul(q, ops.transpose(k)) / temperature
    labels = ops.arange(ops.shape(q)[0], dtype="int32") + ops.cast(offset, "int32")
    pos = ops.take_along_axis(logits, ops.expand_dims(labels, 1), axis=1)[:, 0]
    ce = ops.mean(ops.logsumexp(logits, axis=1) - pos)
    return 2.0 * temperature * ce


def mocov3_loss(q1, q2, k1, k2, temperature=0.2, all_k1=None, all_k2=None, offset=0):
    """L = ctr(q1, k2) + ctr(q2, k1).

    q1, q2: (N, D) query-encoder (predictor) outputs of the two views; k1, k2: (N, D)
    momentum-encoder outputs of the same views. For query n the positive is key n of the
    other view and the other N−1 keys of the batch are negatives. The 2τ factor follows the
    paper's pseudocode; gradients do not flow into k1, k2.

    Across replicas: ``all_k1``, ``all_k2`` are the global batch's keys and the queries its
    rows [offset, offset + N), so every query has all the global batch's other keys as negatives.
    """
    check_positive("temperature", temperature)
    check_same_shape(q1, q2, ("q1", "q2"))
    check_same_shape(q1, k1, ("q1", "k1"))
    check_same_shape(q1, k2, ("q1", "k2"))
    q1, q2, k1, k2 = f32(q1, q2, k1, k2)
    all_k1, all_k2 = (k1, k2) if all_k1 is None else f32(all_k1, all_k2)
    return _ctr(q1, all_k2, temperature, offset) + _ctr(q2, all_k1, temperature, offset)
