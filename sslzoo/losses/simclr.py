"""SimCLR's NT-Xent loss (Chen et al. 2020, arXiv 2002.05709)."""
from keras import ops

from sslzoo.losses.common import check_positive, check_same_shape, f32, l2_normalize


def simclr_loss(z1, z2, temperature=0.5):
    """NT-Xent over the 2N views of a batch.

    With u the L2-normalised rows of [z1; z2] and s_ij = u_i·u_j / τ,

        ℓ(i, j) = −log( exp(s_ij) / Σ_{k≠i} exp(s_ik) ),   L = 1/(2N) Σ_i ℓ(i, pos(i)),

    where pos(i) is the other view of the same image: each view has one positive and 2N−2
    negatives. Inputs are (N, D); the result is a float32 scalar.
    """
    check_positive("temperature", temperature)
    check_same_shape(z1, z2)
    z1, z2 = f32(z1, z2)
    n = ops.shape(z1)[0]
    u = l2_normalize(ops.concatenate([z1, z2], axis=0))
    logits = ops.matmul(u, ops.transpose(u)) / temperature
    # Remove self-similarity from the softmax denominator.
    logits = logits - ops.eye(2 * n, dtype="float32") * 1e9
    pos = ops.concatenate([ops.arange(n, 2 * n), ops.arange(0, n)], axis=0)
    log_prob = logits - ops.logsumexp(logits, axis=1, keepdims=True)
    pos_log_prob = ops.take_along_axis(log_prob, ops.expand_dims(pos, 1), axis=1)
    return -ops.mean(pos_log_prob)
