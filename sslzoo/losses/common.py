"""Helpers shared by the losses: float32 casting and argument checks."""
from keras import ops

from sslzoo.errors import ConfigError


def f32(*xs):
    """Cast every array to float32 (losses are computed in float32 under mixed precision)."""
    out = tuple(ops.cast(x, "float32") for x in xs)
    return out[0] if len(out) == 1 else out


def pooled_f32(x):
    """Float32 features: an (N, H, W, C) map global-average-pooled to (N, C); (N, T, D)
    transformer tokens to their CLS token (N, D), as a ViT's taps are; (N, D) as is."""
    x = ops.cast(x, "float32")
    if len(x.shape) == 4:
        return ops.mean(x, axis=(1, 2))
    return x[:, 0] if len(x.shape) == 3 else x


def check_positive(name, value):
    """Reject a non-positive hyperparameter such as a temperature."""
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


def check_same_shape(a, b, names=("z1", "z2")):
    """Reject two (N, D) embeddings whose static shapes differ or are not rank 2."""
    sa, sb = tuple(a.shape), tuple(b.shape)
    if len(sa) != 2 or len(sb) != 2:
        raise ConfigError(f"{names[0]} and {names[1]} must be (N, D) arrays, got {sa} and {sb}")
    if any(x is not None and y is not None and x != y for x, y in zip(sa, sb)):
        raise ConfigError(f"{names[0]} and {names[1]} must have the same shape, got {sa} and {sb}")


def batch_statistics_inputs(z1, z2, loss, all_sum=None, why=""):
    """(z1, z2 in float32, the cross-replica reduction) for a loss built from batch statistics:
    (N, D) embeddings of the same shape and, on one device, N >= 2 (``why`` says what for).
    ``all_sum`` is the reduction the loss uses (``sslzoo.utils.replicas.all_sum``, or
    ``all_gather`` for a loss that gathers the rows); with None it is the identity."""
    check_same_shape(z1, z2)
    n = tuple(z1.shape)[0]
    if all_sum is None and n is not None and n < 2:
        raise ConfigError(f"{loss} needs a batch of at least 2{why}, got N={n}")
    return (*f32(z1, z2), all_sum or (lambda x: x))


def l2_normalize(x, eps=1e-12):
    """Rows of x scaled to unit L2 norm, x / max(‖x‖², eps)^½: Keras's ``ops.normalize``."""
    return ops.normalize(x, axis=-1, order=2, epsilon=eps ** 0.5)


def mean_cross_entropy(logits, labels):
    """1/N Σ_n −log softmax(logits_n)[labels_n] for (N, K) float32 logits, (N,) integer labels."""
    labels = ops.expand_dims(ops.cast(labels, "int32"), 1)
    picked = ops.take_along_axis(logits, labels, axis=1)[:, 0]
    return ops.mean(ops.logsumexp(logits, axis=1) - picked)


def view_stack_inputs(z, loss, kind="views", all_gather=None):
    """z (n, q, d), q ≥ 2 ``kind`` of each of n ≥ 2 images, as float32 with every row
    L2-normalised, gathered over the replicas with ``all_gather`` (then n ≥ 1 per replica);
    a clear error for any other shape."""
    shape = tuple(z.shape)
    if len(shape) != 3:
        raise ConfigError(f"z must be an (n, q, d) array of n images x q {kind}, got shape "
                          f"{shape}")
    if shape[1] is not None and shape[1] < 2:
        raise ConfigError(f"{loss} needs q >= 2 {kind} per image, got q={shape[1]}")
    if all_gather is None and shape[0] is not None and shape[0] < 2:
        raise ConfigError(f"{loss} needs a batch of at least 2 images, got n={shape[0]}")
    u = l2_normalize(f32(z))
    return u if all_gather is None else all_gather(u)
