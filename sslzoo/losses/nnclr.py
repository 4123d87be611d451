"""NNCLR's nearest-neighbour contrastive loss (Dwibedi et al. 2021, arXiv 2104.14548)."""
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import (check_positive, check_same_shape, f32, l2_normalize,
                                  mean_cross_entropy)


def nearest_neighbours(z, support):
    """NN(z_n, Q): for each L2-normalised row of z (N, D), the L2-normalised row of the support
    set ``support`` (Q, D), a queue of past embeddings, with the highest cosine similarity.

    The result (N, D) carries no gradient (to z or to the support set), as in the method.
    """
    zs, qs = tuple(z.shape), tuple(support.shape)
    if len(zs) != 2 or len(qs) != 2:
        raise ConfigError(f"z and support must be (N, D) and (Q, D) arrays, got {zs} and {qs}")
    if zs[1] is not None and qs[1] is not None and zs[1] != qs[1]:
        raise ConfigError(
            f"support entries have dimension {qs[1]} but z has {zs[1]}; fill the support set "
            "with embeddings of the same projection dimension"
        )
    z, support = f32(z, support)
    q = l2_normalize(support)
    idx = ops.argmax(ops.matmul(l2_normalize(z), ops.transpose(q)), axis=1)
    return ops.stop_gradient(ops.take(q, idx, axis=0))


def nnclr_loss(p, nn, temperature=0.1):
    """NNCLR's InfoNCE (the paper's eq. 3), one direction:

        L = 1/N Σ_i −log( exp(n̂_i·p̂_i/τ) / Σ_k exp(n̂_i·p̂_k/τ) ),

    nn: (N, D) the neighbours NN(z_i, Q) of one view's embeddings (see nearest_neighbours), the
    anchors, held constant (stop-gradient); p: (N, D) the predictions of the other view, row i's
    positive p̂_i and the other rows p̂_k its negatives; both L2-normalised here. The method
    symmetrises over the two views, ½[nnclr_loss(p2, NN(z1)) + nnclr_loss(p1, NN(z2))].
    τ = 0.1 is the paper's temperature.
    """
    check_positive("temperature", temperature)
    check_same_shape(p, nn, ("p", "nn"))
    p, nn = f32(p, nn)
    p = l2_normalize(p)
    nn = ops.stop_gradient(l2_normalize(nn))
    logits = ops.matmul(nn, ops.transpose(p)) / temperature
    return mean_cross_entropy(logits, ops.arange(ops.shape(p)[0], dtype="int32"))
