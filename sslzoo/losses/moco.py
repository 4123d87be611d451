"""MoCo's InfoNCE loss with a queue of negatives (He et al. 2019, arXiv 1911.05722; MoCo v2,
Chen et al. 2020, arXiv 2003.04297)."""
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import check_positive, check_same_shape, f32, l2_normalize


def moco_loss(q, k, queue, temperature=0.2):
    """InfoNCE with one positive key and K queued negatives.

    q, k: (N, D) query and key embeddings, L2-normalised here; queue: (K, D) negative keys,
    assumed already normalised (they are re-normalised here anyway, which is cheap).

        logits_n = [q_n·k_n, q_n·queue_1, …, q_n·queue_K] / τ
        L = 1/N Σ_n −log softmax(logits_n)_0

    k and queue are held constant (stop-gradient): only the query encoder learns from this.
    """
    check_positive("temperature", temperature)
    check_same_shape(q, k, ("q", "k"))
    qs = tuple(queue.shape)
    if len(qs) != 2:
        raise ConfigError(f"queue must be a (K, D) array of negative keys, got shape {qs}")
    d, dq = tuple(q.shape)[1], qs[1]
    if d is not None and dq is not None and d != dq:
        raise ConfigError(
            f"queue entries have dimension {dq} but q and k have {d}; build the queue with the "
            "same projection dimension as the encoder output"
        )
    q, k, queue = f32(q, k, queue)
    q = l2_normalize(q)
    k = ops.stop_gradient(l2_normalize(k))
    queue = ops.stop_gradient(l2_normalize(queue))
    pos = ops.sum(q * k, axis=1, keepdims=True)
    neg = ops.matmul(q, ops.transpose(queue))
    logits = ops.concatenate([pos, neg], axis=1) / temperature
    return ops.mean(ops.logsumexp(logits, axis=1) - logits[:, 0])
