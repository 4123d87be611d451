"""What the CRR callback measures each epoch on its fixed reference views: ΔR of every tap,
and the label-free scores of ``sslzoo.quality`` (RankMe, LiDAR)."""
import math

import tensorflow as tf
from absl import logging
from keras import ops

from sslzoo.losses.coding_rate import pair_delta_r
from sslzoo.losses.common import pooled_f32
from sslzoo.quality import lidar, rankme


def features_fn(model, taps):
    """A compiled function: images → {tap: float32 (n, d) pooled features} of
    ``model.forward`` in inference mode (one graph, not an eager pass per call)."""
    @tf.function(reduce_retracing=True)
    def features(images):
        out = model.forward(images, training=False)
        return {t: pooled_f32(out[t]) for t in taps}
    return features


def tap_features(features, views, batch_size=256):
    """{tap: [float32 (n, d) features of each view]} by ``features`` (see ``features_fn``).

    ``views`` is a list of image arrays of the same n (the views of the same images); each
    call holds about ``batch_size`` images (at least one of each view)."""
    step = max(1, batch_size // len(views))
    feats = {}
    for i in range(0, views[0].shape[0], step):
        chunk = [v[i:i + step] for v in views]
        n = chunk[0].shape[0]
        for tap, z in features(ops.concatenate(chunk, 0)).items():
            parts = feats.setdefault(tap, [[] for _ in views])
            for k in range(len(views)):
                parts[k].append(z[k * n:(k + 1) * n])
    return {t: [ops.concatenate(parts, 0) for parts in f] for t, f in feats.items()}


def finite(tap, *arrays):
    """Whether every array is finite; if not, warn that ``tap``'s scores are skipped."""
    if all(bool(ops.all(ops.isfinite(a))) for a in arrays):
        return True
    logging.warning("CRR: layer %s has NaN or Inf features; its scores are skipped (NaN)", tap)
    return False


def delta_r(tap, z1, z2, eps=0.5):
    """ΔR of the pair partition of L2-normalised z1, z2, or NaN (with a warning) if not
    finite."""
    return float(pair_delta_r(z1, z2, eps=eps, normalize=True)[0]) if finite(
        tap, z1, z2) else math.nan


def quality_scores(tap, views):
    """{"rankme", "lidar"} of one tap's features: RankMe of the first view's (n, d) features
    (unnormalised, as in the paper), LiDAR of the (m, q, d) stack of the first m images' q
    views, m the length of the shortest view array. NaN if any is not finite."""
    m = min(int(v.shape[0]) for v in views)
    stack = ops.stack([v[:m] for v in views], axis=1)
    if not finite(tap, views[0], stack):
        return {"rankme": math.nan, "lidar": math.nan}
    out = {}
    for name, score, z in (("rankme", rankme, views[0]), ("lidar", lidar, stack)):
        try:
            out[name] = float(score(z))
        except Exception as e:  # a decomposition that fails on overflowing (finite) features
            logging.warning("CRR: %s of layer %s failed (%s); logged as NaN", name, tap,
                            str(e).splitlines()[0][:200])
            out[name] = math.nan
    return out
