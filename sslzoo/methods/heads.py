"""Small reusable heads: MLP projectors and predictors, prototype layers, teacher clones."""
import contextlib
import contextvars

import keras
from keras import ops

from sslzoo.losses.common import l2_normalize

_SYNC_BN = contextvars.ContextVar("sync_bn", default=False)


@contextlib.contextmanager
def synchronized_bn(enabled=True):
    """Heads built inside synchronise their BN statistics across replicas (global BN)."""
    token = _SYNC_BN.set(bool(enabled))
    try:
        yield
    finally:
        _SYNC_BN.reset(token)


def mlp(dims, name, hidden_bn=True, last_bn=False, activation="relu", in_dim=None,
        sync_bn=None, last_bias=True):
    """Dense → BN → activation blocks, then a final Dense (optionally BN, no affine).

    ``dims`` lists the output width of every Dense; e.g. (2048, 128) is SimCLR's two-layer
    projector. BN uses PyTorch's defaults (momentum 0.9, eps 1e-5); ``sync_bn`` (default: set
    by ``synchronized_bn``, as the model's backbone does) syncs its statistics across replicas.
    ``last_bias=False`` drops the final Dense's bias (it has none under ``last_bn`` either).
    With ``in_dim`` the head is built at once, so its variables exist before the first step
    (UMM partitions them).
    """
    sync = _SYNC_BN.get() if sync_bn is None else bool(sync_bn)
    layers = []
    for i, d in enumerate(dims):
        last = i == len(dims) - 1
        bias = not (hidden_bn and not last) and not (last and (last_bn or not last_bias))
        layers.append(keras.layers.Dense(d, use_bias=bias, name=f"{name}_dense{i + 1}"))
        if not last:
            if hidden_bn:
                layers.append(keras.layers.BatchNormalization(
                    momentum=0.9, epsilon=1e-5, synchronized=sync, name=f"{name}_bn{i + 1}"))
            act = f"{name}_{activation}{i + 1}"
            layers.append(keras.layers.ReLU(name=act) if activation == "relu"
                          else keras.layers.Activation(activation, name=act))
        elif last_bn:
            layers.append(keras.layers.BatchNormalization(
                momentum=0.9, epsilon=1e-5, center=False, scale=False, synchronized=sync,
                name=f"{name}_bn{i + 1}"))
    head = keras.Sequential(layers, name=name)
    if in_dim is not None:
        head.build((None, int(in_dim)))
    return head


@keras.saving.register_keras_serializable(package="sslzoo")
class Prototypes(keras.layers.Layer):
    """K prototypes c_k (the columns of a (D, K) kernel, no bias): x ↦ x·C.

    ``normalize=True`` L2-normalises the prototypes in the forward pass (DINO's weight-
    normalised last layer with g = 1); SwAV instead renormalises them in place after every
    step (``renormalize``). ``frozen`` (a boolean scalar) stops their gradient.
    """

    def __init__(self, num_prototypes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.num_prototypes, self.normalize = int(num_prototypes), bool(normalize)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.num_prototypes),
                                      initializer="glorot_uniform", name="kernel")
        self.renormalize()

    def prototypes(self):
        return l2_normalize(ops.transpose(self.kernel))

    def renormalize(self):
        """c_k ← c_k / ‖c_k‖ (SwAV, before every step)."""
        self.kernel.assign(ops.transpose(self.prototypes()))

    def call(self, x, frozen=None):
        c = ops.transpose(self.prototypes()) if self.normalize else self.kernel
        if frozen is not None:
            c = ops.where(frozen, ops.stop_gradient(c), c)
        return ops.matmul(x, ops.cast(c, x.dtype))

    def get_config(self):
        return {**super().get_config(), "num_prototypes": self.num_prototypes,
                "normalize": self.normalize}


def clone_head(layer, name):
    """A fresh, built copy of a built head (same config, new weights) named ``name``."""
    copy = type(layer).from_config({**layer.get_config(), "name": name})
    copy.build_from_config(layer.get_build_config())
    return copy
