"""Decoupled Contrastive Learning's DCL and DCLW losses (Yeh et al. 2022, arXiv 2110.06848)."""
from keras import ops

from sslzoo.losses.common import batch_statistics_inputs, check_positive, l2_normalize


def _decoupled(z1, z2, temperature, all_gather, loss, sigma=None):
    """Mean over the 2N anchors of −w·s_pos/τ + log Σ_{k ∉ {i, pos(i)}} exp(s_ik/τ), with
    w = 1 (DCL) or the negative von Mises-Fisher weight of width σ (DCLW)."""
    check_positive("temperature", temperature)
    z1, z2, gather = batch_statistics_inputs(z1, z2, loss, all_gather, " (each view needs a "
                                             "negative from another image)")
    z1, z2 = gather(z1), gather(z2)
    n = ops.shape(z1)[0]
    u = l2_normalize(ops.concatenate([z1, z2], axis=0))
    sim = ops.matmul(u, ops.transpose(u))
    idx = ops.arange(2 * n, dtype="int32")
    pos = ops.concatenate([idx[n:], idx[:n]], axis=0)
    s_pos = ops.take_along_axis(sim, ops.expand_dims(pos, 1), axis=1)[:, 0]
    # Decoupling: the anchor itself and its positive leave the denominator.
    drop = ops.one_hot(idx, 2 * n, dtype="float32") + ops.one_hot(pos, 2 * n, dtype="float32")
    negative = ops.logsumexp(sim / temperature - drop * 1e9, axis=1)
    positive = s_pos / temperature
    if sigma is not None:
        # 2 − N·softmax over the N pairs (the same weight in both directions), not detached.
        w = 2.0 - ops.cast(n, "float32") * ops.softmax(s_pos[:n] / sigma, axis=0)
        positive = positive * ops.concatenate([w, w], axis=0)
    return ops.mean(negative - positive)


def dcl_loss(z1, z2, temperature=0.1, all_gather=None):
    """DCL: NT-Xent without the positive in the denominator (the paper's eq. 6).

    With u the L2-normalised rows of [z1; z2] (2N views), s_ij = u_i·u_j and pos(i) the other
    view of the same image,

        L = 1/(2N) Σ_i [ −s_{i,pos(i)}/τ + log Σ_{k ∉ {i, pos(i)}} exp(s_ik/τ) ],

    so each anchor's negatives are the 2N−2 views of the other images. The mean over both
    directions is half the reference code's l(z1, z2) + l(z2, z1). z1, z2: (N, D), N ≥ 2.

    Across replicas: pass ``all_gather=sslzoo.utils.replicas.all_gather``. z1, z2 are then this
    replica's rows, the loss is computed over the gathered global batch (every replica returns
    the global batch's loss) and its gradient flows back to each replica's own rows.
    """
    return _decoupled(z1, z2, temperature, all_gather, "dcl_loss")


def dclw_loss(z1, z2, temperature=0.1, sigma=0.5, all_gather=None):
    """DCLW: DCL with the positive term weighted by the negative von Mises-Fisher weight

        w_i = 2 − 2N · exp(s_{i,pos(i)}/σ) / Σ_j exp(s_{j,pos(j)}/σ)    (j over the 2N anchors),

    i.e. 2 − N·softmax_n(s_n/σ) over the N positive pairs (each pair is counted twice among the
    2N anchors), so the weights average to 1 and easy positives (high s) weigh less:

        L = 1/(2N) Σ_i [ −w_i s_{i,pos(i)}/τ + log Σ_{k ∉ {i, pos(i)}} exp(s_ik/τ) ].

    As in the reference implementation github.com/raminnakhli/Decoupled-Contrastive-Learning
    (loss/dcl.py; third-party, no release by the paper's authors was found), w is NOT
    detached: the gradient also flows through the weights. σ = 0.5 and τ = 0.1 are its
    defaults.
    ``all_gather`` as in dcl_loss (the weights' softmax then runs over the global batch).
    """
    check_positive("sigma", sigma)
    return _decoupled(z1, z2, temperature, all_gather, "dclw_loss", sigma)
