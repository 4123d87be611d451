"""``CRRMonitor``: an identity Keras layer that measures ΔR of what flows through it.

Drop it anywhere in a functional model (``x = CRRMonitor(name="crr_block3")(x)``). In the
forward pass it returns its input unchanged. During training, every ``every``-th call, it
computes ΔR = R − Rc, R and Rc (MCR², see ``sslzoo.losses.coding_rate``) of the batch's
features in float32 and under stop-gradient, and keeps them in non-trainable variables
``delta_r``, ``r`` and ``rc``. SSL models report them as ``crr/<tap>/delta_r`` and so on, and
``crr_logs(model)`` reads them for any model.

Partitions of the batch (no labels needed):

- ``pairs`` (default): the batch is ``[view1; view2]`` of N images, so each image's two
  views form one class: N classes of size 2. This is how every sslzoo model feeds its encoder.
- ``kmeans``: k-means pseudo-labels on the batch (``num_clusters`` classes).

Conv maps (m, H, W, C) are global-average-pooled first (``fmap="pool"``) or measured at every
location and averaged over H·W (``fmap="per_location"``). Features are L2-normalised per
sample first (``normalize=True``), so that layers of different widths can be compared.

A batch whose features hold NaN or Inf is not measured: the previous values are kept and
``nonfinite`` counts the skipped measurements (the callback warns, naming the layer).

Under a distribution strategy the monitor measures the global batch: each replica gathers the
others' (pooled) features, view 1 rows before view 2 rows, so every replica stores the ΔR a
single device would on the same global batch.
"""
import keras
from keras import ops

from sslzoo.errors import ConfigError, unknown_choice
from sslzoo.losses.coding_rate import (FMAP_MODES, coding_rate_reduction, feature_map_delta_r,
                                       pair_delta_r)
from sslzoo.losses.partition import kmeans_labels
from sslzoo.utils.replicas import all_gather, num_replicas

PARTITIONS = ("pairs", "kmeans")
STATS = ("delta_r", "r", "rc")


def tap_stats(x, eps=0.5, partition="pairs", normalize=True, fmap="pool", num_clusters=10):
    """(ΔR, R, Rc) of a batch of features (m, d) or maps (m, H, W, C), float32."""
    x = ops.cast(ops.stop_gradient(x), "float32")
    if len(x.shape) == 4 and fmap == "pool":
        x = ops.mean(x, axis=(1, 2))
    if partition == "pairs":
        n = ops.shape(x)[0] // 2
        if len(x.shape) == 4:
            labels = ops.concatenate([ops.arange(n), ops.arange(n)], 0)
            return feature_map_delta_r(x, labels, eps, mode=fmap, num_classes=x.shape[0] // 2,
                                       normalize=normalize)
        return pair_delta_r(x[:n], x[n:2 * n], eps=eps, normalize=normalize)
    if len(x.shape) == 4:
        x = ops.mean(x, axis=(1, 2))
    labels = kmeans_labels(x, num_clusters)
    return coding_rate_reduction(x, labels, eps, num_classes=num_clusters, normalize=normalize)


@keras.saving.register_keras_serializable(package="sslzoo")
class CRRMonitor(keras.layers.Layer):
    """Identity layer that measures ΔR, R and Rc of its input every ``every`` training calls."""

    def __init__(self, every=1, eps=0.5, partition="pairs", normalize=True, fmap="pool",
                 num_clusters=10, **kwargs):
        # Its float32 statistics must not be autocast to a mixed policy's compute dtype: the
        # float32 policy keeps Keras from opening an autocast scope when the monitor is called
        # outside any layer (as SSLMethod.forward does), and autocast=False from casting inputs.
        kwargs.setdefault("dtype", "float32")
        super().__init__(autocast=False, **kwargs)
        if every < 1:
            raise ConfigError(f"CRRMonitor every must be >= 1, got {every}")
        if not eps > 0:
            raise ConfigError(f"CRRMonitor eps must be > 0, got {eps}")
        if partition not in PARTITIONS:
            raise unknown_choice("CRR partition", partition, PARTITIONS)
        if fmap not in FMAP_MODES:
            raise unknown_choice("CRR feature-map mode", fmap, FMAP_MODES)
        self.every, self.eps, self.partition = int(every), float(eps), partition
        self.normalize, self.fmap, self.num_clusters = bool(normalize), fmap, int(num_clusters)
        for s in STATS:
            setattr(self, s, self.add_weight(shape=(), initializer="zeros", trainable=False,
                                             name=s, dtype="float32"))
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     name="calls", dtype="int64")
        self.nonfinite = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                         name="nonfinite", dtype="int64")

    def call(self, x, training=None):
        if not training:
            return x
        if x.shape[0] is not None and x.shape[0] < 2:
            raise ConfigError(f"{self.name}: ΔR needs a batch of at least 2 samples")
        due = ops.equal(self.calls % self.every, 0)
        self.calls.assign_add(1)
        feats = self.global_batch(x)

        def run():
            finite = ops.all(ops.isfinite(feats))
            safe = ops.where(finite, feats, 0.0)
            stats = tap_stats(safe, self.eps, self.partition, self.normalize, self.fmap,
                            self.num_clusters)
            old = [getattr(self, s).value for s in STATS]
            return [ops.where(finite, new, prev) for new, prev in zip(stats, old)] + [
                ops.cast(ops.logical_not(finite), "int64")]

        def keep():
            return [getattr(self, s).value for s in STATS] + [ops.zeros((), "int64")]

        *stats, bad = ops.cond(due, run, keep)
        for s, v in zip(STATS, stats):
            getattr(self, s).assign(v)
        self.nonfinite.assign_add(bad)
        return x

    def global_batch(self, x):
        """Float32, stop-gradient features of every replica's batch, pooled first when the
        measurement pools (so the finite check and the gather touch (m, C), not the map: a
        NaN or Inf anywhere in the map still reaches the mean); the ``pairs`` order
        [all view 1; all view 2] is kept."""
        x = ops.cast(ops.stop_gradient(x), "float32")
        if len(x.shape) == 4 and (self.fmap == "pool" or self.partition == "kmeans"):
            x = ops.mean(x, axis=(1, 2))
        if num_replicas() == 1:
            return x
        if self.partition != "pairs":
            return all_gather(x)
        n = ops.shape(x)[0] // 2
        return ops.concatenate([all_gather(x[:n]), all_gather(x[n:2 * n])], axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "every": self.every, "eps": self.eps,
                "partition": self.partition, "normalize": self.normalize, "fmap": self.fmap,
                "num_clusters": self.num_clusters}


def monitors_of(model):
    """Every CRRMonitor inside ``model`` (searching nested models), by layer name."""
    found = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, CRRMonitor):
            found[layer.name] = layer
    return found


def crr_logs(model, prefix="crr"):
    """``{"crr/<tap>/delta_r": value, ...}`` for every monitor in ``model``; a monitor named
    ``crr_<tap>`` reports as ``<tap>``."""
    return {f"{prefix}/{name.removeprefix('crr_')}/{s}": getattr(m, s).value
            for name, m in monitors_of(model).items() for s in STATS}
