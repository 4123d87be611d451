"""ΔR of a model's taps on fixed reference views: what the CRR callback measures each epoch."""
import math

from absl import logging
from keras import ops

from sslzoo.crr.coding_rate import pair_delta_r
from sslzoo.losses.common import pooled_f32


def reference_delta_r(model, v1, v2, taps, eps=0.5, batch_size=256):
    """{tap: ΔR} of ``model.forward``'s features at ``taps`` for the fixed views ``v1``, ``v2``
    (pair partition, L2-normalised features; inference mode, in batches of ``batch_size``
    pairs). A tap with non-finite features gets NaN and a warning."""
    z1, z2 = {t: [] for t in taps}, {t: [] for t in taps}
    for i in range(0, v1.shape[0], batch_size):
        a, b = v1[i:i + batch_size], v2[i:i + batch_size]
        out = model.forward(ops.concatenate([a, b], 0), training=False)
        n = a.shape[0]
        for tap in taps:
            z = pooled_f32(out[tap])
            z1[tap].append(z[:n])
            z2[tap].append(z[n:])
    result = {}
    for tap in taps:
        a, b = ops.concatenate(z1[tap], 0), ops.concatenate(z2[tap], 0)
        if not bool(ops.all(ops.isfinite(a))) or not bool(ops.all(ops.isfinite(b))):
            logging.warning("CRR: layer %s has NaN or Inf features; its ΔR is skipped", tap)
            result[tap] = math.nan
            continue
        result[tap] = float(pair_delta_r(a, b, eps=eps, normalize=True)[0])
    return result
