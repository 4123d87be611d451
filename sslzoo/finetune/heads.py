"""The models of fine-tuning: the embedding model from ``--init_from``, the classifier built
on it, and the trainer that gives the backbone its own (lower) learning rate."""
import keras
import numpy as np
import tensorflow as tf

from sslzoo import backbones, zoo
from sslzoo.optim import Optimizers, ParamGroup


def embedding_model(cfg, image_size=None):
    """(images → pooled embedding, image size it takes, the zoo Source or None for random).

    A pretrained source is loaded with `sslzoo.zoo.load` (a bad one raises WeightsError);
    ``random`` builds an untrained ``cfg.backbone`` wrapped the same way (uint8 or float
    pixels in [0, 255])."""
    if not cfg.is_random:
        model = zoo.load(cfg.init_from, image_size=image_size or None)
        return model, model.sslzoo_source.image_size, model.sslzoo_source
    size = int(image_size or 32)
    net = backbones.build(cfg.backbone, image_size=size, stem=cfg.stem)
    images = keras.Input((size, size, 3), name="images")
    model = keras.Model(images, net(keras.ops.cast(images, "float32")),
                        name=f"random_{cfg.backbone}")
    return model, size, None


def classifier(embedding, num_classes, mean=None, variance=None, batch_norm=False):
    """images → logits: ``embedding`` → a feature normalisation → Dense(num_classes) named
    "head". The normalisation is a fixed standardisation ("standardize") when ``mean`` and
    ``variance`` are given, a BatchNormalization without scale and offset ("head_bn",
    momentum 0.9 like the backbone's) with ``batch_norm``, else none. Only built-in layers, so
    the model loads with safe_mode."""
    x = embedding.output
    if mean is not None:
        x = keras.layers.Normalization(mean=np.asarray(mean), variance=np.asarray(variance),
                                       name="standardize")(x)
    elif batch_norm:
        x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False,
                                            scale=False, name="head_bn")(x)
    logits = keras.layers.Dense(num_classes, name="head")(x)
    return keras.Model(embedding.input, logits, name=f"{embedding.name}_classifier")


class TwoRateTrainer(keras.Model):
    """Trains ``model`` (a classifier) with the compiled optimizer for the head and a second
    optimizer, ``backbone_optimizer`` (its learning rate a multiple of the head's), for the
    ``backbone_vars``: two ``sslzoo.optim`` parameter groups, ``head`` and ``backbone``. With no
    backbone optimizer the backbone weights stay fixed (its BatchNorm statistics still adapt).

    Two optimizers rather than scaled gradients, because Adam-style optimizers ignore the scale
    of a gradient. Only the classifier is saved; the trainer is a training-time wrapper."""

    def __init__(self, model, backbone_vars, backbone_optimizer=None, **kwargs):
        super().__init__(**kwargs)
        self.classifier = model
        self.backbone_optimizer = backbone_optimizer
        ids = {id(v) for v in backbone_vars}
        self.backbone_vars = [v for v in model.trainable_variables if id(v) in ids]
        self.head_vars = [v for v in model.trainable_variables if id(v) not in ids]
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        groups = [ParamGroup("head", self.head_vars)]
        if self.backbone_optimizer is not None:
            groups.append(ParamGroup("backbone", self.backbone_vars,
                                     optimizer=self.backbone_optimizer))
        self.optimizers = Optimizers(self.optimizer, groups)

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def call(self, x, training=False):
        return self.classifier(x, training=training)

    def build_optimizers(self):
        self.optimizers.build()

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            logits = self(x, training=True)
            ce = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            loss = keras.ops.mean(ce) + sum(self.classifier.losses)
        self.optimizers.step(tape, loss, *self.optimizers.groups)
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(y, logits)
        return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy_tracker.result(),
                "lr": keras.ops.convert_to_tensor(self.optimizer.learning_rate)}
