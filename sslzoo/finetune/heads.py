"""The models of fine-tuning: the embedding model from ``--init_from``, the classifier built
on it, and the trainer that gives the backbone its own (lower) learning rate."""
import keras
import numpy as np
import tensorflow as tf

from sslzoo import backbones, zoo
from sslzoo.backbones import vit
from sslzoo.errors import ConfigError
from sslzoo.optim import Optimizers, ParamGroup


def embedding_model(cfg, image_size=None):
    """(images → pooled embedding, image size it takes, the zoo Source or None for random).

    A pretrained source is loaded with `sslzoo.zoo.load` (a bad one raises WeightsError);
    ``random`` builds an untrained ``cfg.backbone`` wrapped the same way (uint8 or float
    pixels in [0, 255]). A ViT reads out ``cfg.pool`` (empty: its CLS token)."""
    pool = cfg.pool or None
    if not cfg.is_random:
        model = zoo.load(cfg.init_from, image_size=image_size or None, pool=pool)
        return model, model.sslzoo_source.image_size, model.sslzoo_source
    size = int(image_size or 32)
    net = backbones.build(cfg.backbone, image_size=size, stem=cfg.stem, pool=pool)
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


def backbone_layers(variables, decay=1.0):
    """The backbone's learning-rate groups for fine-tuning, [(rate multiple, variables)]: one
    group at 1 with ``decay`` = 1, else ViT layer-wise decay (``vit.layer_index``): layer l of
    a depth-D ViT at decay^(D + 1 − l). A backbone with no ViT blocks gets a ConfigError."""
    if decay == 1.0:
        return [(1.0, list(variables))]
    depth = max((vit.block_of(v.path) or 0 for v in variables), default=0)
    if not depth:
        raise ConfigError("--layer_decay needs a ViT backbone (" + ", ".join(vit.available())
                          + "); this one has no block<i> layers. Leave --layer_decay=1.")
    layers = {}
    for v in variables:
        layers.setdefault(vit.layer_index(v.path, depth), []).append(v)
    return [(decay ** (depth + 1 - i), layers[i]) for i in sorted(layers)]


class TwoRateTrainer(keras.Model):
    """Trains ``model`` (a classifier) with the compiled optimizer for the head and other
    optimizers for parts of the backbone: ``backbone_groups`` is a list of (variables,
    optimizer), each optimizer's rate a multiple of the head's (one group, or one per ViT layer
    with layer-wise decay). These are ``sslzoo.optim`` parameter groups, ``head`` and
    ``backbone`` (``backbone<i>`` with several). Backbone variables in no group stay fixed
    (its BatchNorm statistics still adapt).

    Several optimizers rather than scaled gradients, because Adam-style optimizers ignore the
    scale of a gradient. Only the classifier is saved; the trainer is a training-time wrapper."""

    def __init__(self, model, backbone_vars, backbone_groups=(), **kwargs):
        super().__init__(**kwargs)
        self.classifier = model
        ids = {id(v) for v in backbone_vars}
        trained = {id(v) for vs, _ in backbone_groups for v in vs}
        if not trained <= ids:
            raise ConfigError("a backbone group holds variables that are not the backbone's")
        self.backbone_groups = [(_in_model_order(model, vs), opt) for vs, opt in backbone_groups]
        self.head_vars = [v for v in model.trainable_variables if id(v) not in ids]
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        groups = [ParamGroup("head", self.head_vars)]
        single = len(self.backbone_groups) == 1
        for i, (vs, opt) in enumerate(self.backbone_groups):
            groups.append(ParamGroup("backbone" if single else f"backbone{i}", vs,
                                     optimizer=opt))
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


def _in_model_order(model, variables):
    """``variables`` in the order of ``model.trainable_variables``."""
    wanted = {id(v) for v in variables}
    return [v for v in model.trainable_variables if id(v) in wanted]
