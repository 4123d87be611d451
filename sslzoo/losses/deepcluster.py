"""DeepCluster-v2's prototype cross-entropy and spherical k-means (Caron et al. 2020, arXiv
2006.09882, appendix; the authors' main_deepclusterv2.py in github.com/facebookresearch/swav)."""
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import check_positive, f32, l2_normalize
from sslzoo.utils.config import is_int

KMEANS_ROWS = 16384  # rows whose similarities to the centroids are formed at once


def deepcluster_v2_loss(scores, assignments, temperature=0.1, all_sum=None):
    """L = 1/|V| Σ_{n∈V} −log softmax(scores_n / τ)[a_n],  V = {n : a_n ≥ 0}.

    scores: (N, K) similarities of L2-normalised embeddings to the K (normalised) k-means
    centroids used as prototypes; assignments: (N,) integer cluster ids in [0, K) from the
    last k-means pass (constants). A negative id (an image that was not in the memory bank
    when k-means ran) is left out, as the official code's ``ignore_index``; L is 0 when no row
    is left. τ = 0.1 is the official default. With several prototype sets (the official code
    runs k-means with several K) average this loss over them.

    Across replicas: pass ``all_sum=sslzoo.utils.replicas.all_sum``; the sum and the count
    then run over the global batch, so every replica gets the global loss.
    """
    check_positive("temperature", temperature)
    ss, as_ = tuple(scores.shape), tuple(assignments.shape)
    if len(ss) != 2 or len(as_) != 1:
        raise ConfigError(f"scores must be (N, K) and assignments (N,), got {ss} and {as_}")
    if ss[0] is not None and as_[0] is not None and ss[0] != as_[0]:
        raise ConfigError(f"scores has {ss[0]} rows but assignments {as_[0]}; pass one cluster "
                          "id per row")
    if "int" not in str(assignments.dtype):
        raise ConfigError(f"assignments must be integer cluster ids, got dtype {assignments.dtype}")
    logits = f32(scores) / temperature
    ids = ops.cast(assignments, "int32")
    kept = ids >= 0
    picked = ops.take_along_axis(logits, ops.expand_dims(ops.maximum(ids, 0), 1), axis=1)[:, 0]
    ce = ops.where(kept, ops.logsumexp(logits, axis=1) - picked, 0.0)
    total, count = (all_sum or (lambda x: x))((ops.sum(ce), ops.sum(ops.cast(kept, "float32"))))
    return total / ops.maximum(count, 1.0)


def spherical_kmeans(x, centroids, iterations=10, weights=None):
    """(centroids (K, D), assignments (M,) int32) of k-means on the unit rows ``x`` (M, D) by
    dot product, from the initial unit ``centroids`` (K, D), without gradient.

    Each of ``iterations`` rounds assigns every row to its most similar centroid and moves
    every centroid that got rows to their mean, L2-normalised (one that got none stays); a last
    assignment follows. ``weights`` (M,) of 0 leave rows out of the means (they still get an
    assignment). The official code's k-means: 10 rounds, started from random memory rows.
    """
    if not is_int(iterations, 0):
        raise ConfigError(f"k-means iterations must be an integer >= 0, got {iterations!r}")
    x, c = ops.stop_gradient(f32(x)), ops.stop_gradient(f32(centroids))
    k = tuple(c.shape)[0]
    w = ops.ones(ops.shape(x)[:1]) if weights is None else f32(weights)

    def step(_, c):
        a = nearest_centroid(x, c)
        sums = ops.segment_sum(x * w[:, None], a, num_segments=k)
        counts = ops.segment_sum(w, a, num_segments=k)[:, None]
        return l2_normalize(ops.where(counts > 0, sums / ops.maximum(counts, 1e-12), c))

    c = ops.fori_loop(0, iterations, step, c)
    return c, nearest_centroid(x, c)


def nearest_centroid(x, centroids, rows=KMEANS_ROWS):
    """Index (int32) of the largest dot product of each row of ``x`` (M, D) with the rows of
    ``centroids`` (K, D), ``rows`` rows at a time (an (M, K) matrix of a whole ImageNet bank
    would not fit in memory)."""
    m = tuple(x.shape)[0]

    def block(b):
        return ops.cast(ops.argmax(ops.matmul(b, ops.transpose(centroids)), axis=1), "int32")

    if m is None or m <= rows:
        return block(x)
    blocks = ops.reshape(ops.pad(x, [[0, -m % rows], [0, 0]]), (-1, rows, tuple(x.shape)[1]))
    return ops.reshape(ops.map(block, blocks), (-1,))[:m]
