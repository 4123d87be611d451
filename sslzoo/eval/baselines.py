"""Reference probes to read a pretrained backbone against: raw pixels and random weights
(floors), and the same backbone trained with labels at the same budget (a ceiling)."""
import keras
import numpy as np

from sslzoo import backbones
from sslzoo.data.augment import apply_view, view_pipeline
from sslzoo.data.pipeline import eval_batches, ssl_batches
from sslzoo.errors import ConfigError
from sslzoo.optim import warmup_cosine
from sslzoo.probes import linear_probe, probe_backbone


def _pixels(data):
    xs, ys = [], []
    for x, y in eval_batches(data):
        xs.append(x.numpy().reshape(x.shape[0], -1).astype("float32"))
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def mean_std(values):
    """{"values", "mean", "std"} (population std) of a list of accuracies."""
    values = [float(v) for v in values]
    return {"values": values, "mean": float(np.mean(values)), "std": float(np.std(values))}


def raw_pixel_probe(fit, test):
    """Linear-probe accuracy on the flattened pixels (the same standardised logistic
    regression as every other probe)."""
    return linear_probe(*_pixels(fit), *_pixels(test))


def random_init_probe(backbone, fit, test, seed=0, stem="auto"):
    """Linear-probe accuracy of an untrained ``backbone`` (weights drawn with ``seed``)."""
    keras.utils.set_random_seed(seed)
    net = backbones.build(backbone, image_size=fit.image_size, stem=stem)
    return probe_backbone(net, fit, test)


def supervised_ceiling(backbone, train, fit, test, epochs, batch_size=100,
                       learning_rate=1e-3, warmup_epochs=10, augment=None, seed=0, stem="auto"):
    """The same backbone trained with labels at an SSL run's budget, as a ceiling.

    ``backbone`` → Dense(classes) is trained with cross-entropy on the labelled ``train``
    split (the SSL run's pretraining split) for ``epochs`` of ``batch_size`` with Adam at
    ``learning_rate`` (linear warmup, then cosine to 0, like the study's default). ``augment``
    is a recipe (name or :class:`~sslzoo.data.augment.Recipe`) whose first view augments each
    batch; None trains on the images as they are. Returns ``{"head_top1"}`` (the trained
    head on ``test``) and ``{"linear_probe_top1"}`` (the standard probe of its pooled
    features, fitted on ``fit`` and scored on ``test``, like every other probe).
    """
    if not train.num_classes:
        raise ConfigError(f"{train.name} {train.split} has no labels; the supervised ceiling "
                          "needs a labelled split")
    keras.utils.set_random_seed(seed)
    net = backbones.build(backbone, image_size=train.image_size, stem=stem)
    head = keras.layers.Dense(train.num_classes, name="head")
    inputs = keras.Input((train.image_size, train.image_size, 3))
    model = keras.Model(inputs, head(net(inputs)))
    steps = max(train.num_examples // batch_size, 1)
    model.compile(keras.optimizers.Adam(warmup_cosine(learning_rate, epochs * steps,
                                                      round(warmup_epochs * steps))),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    views = None
    if augment is not None:
        ops = view_pipeline(augment, train.image_size)
        views = lambda x, seed: apply_view(ops, x, seed)  # noqa: E731
    ds = ssl_batches(train, min(batch_size, train.num_examples), views, seed=seed)
    model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0)
    _, head_top1 = model.evaluate(eval_batches(test), verbose=0)
    return {"head_top1": float(head_top1), "linear_probe_top1": probe_backbone(net, fit, test)}
