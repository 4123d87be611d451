"""DeepCluster-v2's prototype cross-entropy (Caron et al. 2020, arXiv 2006.09882, appendix; the
authors' main_deepclusterv2.py in github.com/facebookresearch/swav)."""
from sslzoo.errors import ConfigError
from sslzoo.losses.common import check_positive, f32, mean_cross_entropy


def deepcluster_v2_loss(scores, assignments, temperature=0.1):
    """L = 1/N Σ_n −log softmax(scores_n / τ)[a_n].

    scores: (N, K) similarities of L2-normalised embeddings to the K (normalised) k-means
    centroids used as prototypes; assignments: (N,) integer cluster ids in [0, K) from the
    last k-means pass (constants). τ = 0.1 is the official default. With several prototype
    sets (the official code runs k-means with several K) average this loss over them.
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
    return mean_cross_entropy(f32(scores) / temperature, assignments)
