"""The "plain Keras step": the reference an sslzoo train step is compared against.

``PlainSimCLR`` has the same backbone (``sslzoo.backbones.build``) and projector
(``sslzoo.methods.heads.mlp``, same widths) as sslzoo's SimCLR and a ``train_step`` written
directly with ``tf.GradientTape``, ``simclr_loss`` and ``optimizer.apply``: no probe, no CRR
monitors, no views or schedule logic. It is compiled with the same optimizer kind and runs
under the same precision policy; under mixed_float16 Keras wraps its optimizer in a
LossScaleOptimizer as it does sslzoo's, so the loss is scaled the same way.
"""
import keras
import tensorflow as tf
from keras import ops

from sslzoo import backbones
from sslzoo.errors import ConfigError
from sslzoo.losses import simclr_loss
from sslzoo.methods.heads import mlp
from sslzoo.optim import exclude_norms_and_biases


class PlainSimCLR(keras.Model):
    """backbone → projector → NT-Xent, one hand-written train step."""

    def __init__(self, backbone, proj_dims, temperature=0.5):
        super().__init__(name=f"plain_simclr_{backbone.name}")
        self.backbone = backbone
        self.projector = mlp(tuple(proj_dims), "projector")
        self.temperature = float(temperature)
        self.image_size = int(backbone.input.shape[1])
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @classmethod
    def like(cls, model, stem="auto"):
        """A reference with the architecture of the sslzoo SimCLR ``model`` (fresh weights).

        ``stem`` must be the one ``model``'s backbone was built with; the weight shapes are
        checked to be identical.
        """
        h = model.hparams
        net = backbones.build(model.backbone.name, image_size=model.image_size, stem=stem)
        hidden = h.get("proj_hidden_dim") or net.output.shape[-1]
        plain = cls(net, (hidden, h["proj_dim"]), h["temperature"])
        plain.build_weights()
        if (_shapes(net.weights) != _shapes(model.backbone.weights)
                or _widths(plain.projector) != _widths(model.projector)):
            raise ConfigError(f"the plain reference does not match {model.name}'s architecture "
                              f"(built with stem {stem!r}: is that the model's?)")
        return plain

    def build_weights(self):
        x = tf.zeros((2, self.image_size, self.image_size, 3))
        self(x, training=False)

    def build_all(self):
        """Create the weights and the optimizer's slots (as ``SSLMethod.build_all`` does)."""
        self.build_weights()
        exclude_norms_and_biases(self.optimizer, self.trainable_variables)
        self.optimizer.build(self.trainable_variables)

    def load_weights_from(self, model):
        """Copy the backbone and projector weights (and BN statistics) of an sslzoo model."""
        self.backbone.set_weights(model.backbone.get_weights())
        self.projector.set_weights(model.projector.get_weights())

    def call(self, images, training=False):
        return self.projector(self.backbone(images, training=training), training=training)

    def compute_ssl_loss(self, v1, v2, training=True):
        z = self(ops.concatenate([v1, v2], 0), training=training)
        n = ops.shape(v1)[0]
        return simclr_loss(z[:n], z[n:], temperature=self.temperature)

    def train_step(self, data):
        (v1, v2), _ = data
        with tf.GradientTape() as tape:
            loss = self.compute_ssl_loss(v1, v2, training=True)
        grads = tape.gradient(self.optimizer.scale_loss(loss), self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_tracker]


def _shapes(weights):
    return [tuple(w.shape) for w in weights]


def _widths(head):
    return [layer.units for layer in head.layers if isinstance(layer, keras.layers.Dense)]


PLAIN = {"simclr": PlainSimCLR}


def plain_like(model, stem="auto"):
    """The plain-Keras reference of an sslzoo model's method."""
    if model.method not in PLAIN:
        raise ConfigError(f"no plain-Keras reference for method {model.method!r} yet (have: "
                          f"{', '.join(sorted(PLAIN))}); add one to sslzoo/bench/plain.py")
    return PLAIN[model.method].like(model, stem=stem)
