"""SimCLR's NT-Xent loss (Chen et al. 2020, arXiv 2002.05709)."""
from keras import ops

from sslzoo.losses.common import check_positive, check_same_shape, f32, l2_normalize


def simclr_loss(z1, z2, temperature=0.5, all_z1=None, all_z2=None, offset=0):
    """NT-Xent over the 2N views of a batch.

    With u the L2-normalised rows of [z1; z2] and s_ij = u_i·u_j / τ,

        ℓ(i, j) = −log( exp(s_ij) / Σ_{k≠i} exp(s_ik) ),   L = 1/(2N) Σ_i ℓ(i, pos(i)),

    where pos(i) is the other view of the same image: each view has one positive and 2N−2
    negatives. Inputs are (N, D); the result is a float32 scalar.

    Across replicas: ``all_z1``, ``all_z2`` (N_g, D) are the global batch's views and z1, z2
    its rows [offset, offset + N). The local rows are then scored against all 2N_g views, so
    the replicas' losses average to the global loss.
    """
    check_positive("temperature", temperature)
    check_same_shape(z1, z2)
    z1, z2 = f32(z1, z2)
    all_z1, all_z2 = (z1, z2) if all_z1 is None else f32(all_z1, all_z2)
    n, total = ops.shape(z1)[0], ops.shape(all_z1)[0]
    q = l2_normalize(ops.concatenate([z1, z2], axis=0))
    k = l2_normalize(ops.concatenate([all_z1, all_z2], axis=0))
    logits = ops.matmul(q, ops.transpose(k)) / temperature
    local = ops.arange(n, dtype="int32") + ops.cast(offset, "int32")
    self_idx = ops.concatenate([local, local + total], axis=0)
    pos = ops.concatenate([local + total, local], axis=0)
    # Remove self-similarity from the softmax denominator.
    logits = logits - ops.one_hot(self_idx, 2 * total, dtype="float32") * 1e9
    log_prob = logits - ops.logsumexp(logits, axis=1, keepdims=True)
    pos_log_prob = ops.take_along_axis(log_prob, ops.expand_dims(pos, 1), axis=1)
    return -ops.mean(pos_log_prob)
