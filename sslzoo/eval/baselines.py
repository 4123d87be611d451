"""Reference probes that a pretrained backbone must beat: raw pixels and random weights."""
import keras
import numpy as np

from sslzoo import backbones
from sslzoo.data.pipeline import eval_batches
from sslzoo.eval.linear import linear_probe, probe_backbone


def _pixels(data):
    xs, ys = [], []
    for x, y in eval_batches(data):
        xs.append(x.numpy().reshape(x.shape[0], -1).astype("float32"))
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def raw_pixel_probe(fit, test):
    """Linear-probe accuracy on the flattened pixels (the same standardised logistic
    regression as every other probe)."""
    return linear_probe(*_pixels(fit), *_pixels(test))


def random_init_probe(backbone, fit, test, seed=0, stem="auto"):
    """Linear-probe accuracy of an untrained ``backbone`` (weights drawn with ``seed``)."""
    keras.utils.set_random_seed(seed)
    net = backbones.build(backbone, image_size=fit.image_size, stem=stem)
    return probe_backbone(net, fit, test)
