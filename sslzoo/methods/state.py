"""Model state updated outside the gradient step: FIFO queues and cross-replica gathering.

State lives in non-trainable variables (saved and restored by ``tf.train.Checkpoint`` with the
model). Updates are written from the replica context with values gathered over all replicas,
so every replica writes the same value.
"""
import keras
from keras import ops

from sslzoo.errors import ConfigError
from sslzoo.losses.common import f32, l2_normalize
from sslzoo.utils.replicas import all_gather  # noqa: F401  (re-exported for the methods)


def state_weight(layer, name, shape, dtype="float32", initializer="zeros"):
    """A non-trainable state variable of ``layer``."""
    return layer.add_weight(name=name, shape=shape, dtype=dtype, initializer=initializer,
                            trainable=False, aggregation="only_first_replica")


@keras.saving.register_keras_serializable(package="sslzoo")
class Queue(keras.layers.Layer):
    """The last ``size`` rows pushed (a ring buffer; ``count`` saturates at ``size``).

    ``random=True`` starts it full of random unit vectors (MoCo's initial negatives);
    otherwise it starts empty (zeros) and is ``full`` after ``size`` rows.
    """

    def __init__(self, size, dim, random=False, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if int(size) < 1:
            raise ConfigError(f"{self.name}: queue size must be >= 1, got {size}")
        self.size, self.dim, self.random = int(size), int(dim), bool(random)
        self.values = state_weight(self, "values", (self.size, self.dim),
                                   initializer="random_normal" if random else "zeros")
        self.ptr = state_weight(self, "ptr", (), "int64")
        self.count = state_weight(self, "count", (), "int64")
        if random:
            self.values.assign(l2_normalize(self.values))
            self.count.assign(self.size)
        self.built = True

    @property
    def full(self):
        return ops.greater_equal(self.count, self.size)

    def push(self, rows):
        """Overwrite the oldest rows with ``rows`` (N, dim); keeps the last ``size`` if N > size."""
        rows = ops.stop_gradient(f32(rows))
        if rows.shape[0] is not None and rows.shape[0] > self.size:
            rows = rows[-self.size:]
        n = ops.shape(rows)[0]
        index = (self.ptr + ops.arange(n, dtype="int64")) % self.size
        self.values.assign(ops.scatter_update(self.values, ops.expand_dims(index, 1), rows))
        self.ptr.assign((self.ptr + ops.cast(n, "int64")) % self.size)
        self.count.assign(ops.minimum(self.count + ops.cast(n, "int64"), self.size))

    def get_config(self):
        return {**super().get_config(), "size": self.size, "dim": self.dim,
                "random": self.random}
