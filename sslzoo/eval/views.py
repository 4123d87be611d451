"""How much two training views of the same image agree under a model: a label-free check that
an augmentation recipe leaves a self-distillation target something to predict.

For N images with view embeddings a_n, b_n (batch-centred, then ℓ2-normalised, as DINO's
centring does to its teacher), S_nm = cos(a_n, b_m) and

    same = mean_n S_nn,   other = mean_{n≠m} S_nm,   retrieval = mean_n [argmax_m S_nm = n].

At initialisation (the teacher of BYOL or DINO *is* the random student) a recipe with
retrieval near 1/N gives targets that no other view can predict.
"""
import numpy as np
import tensorflow as tf

from sslzoo import data, methods
from sslzoo.errors import DataError
from sslzoo.utils.config import parse_hparams
from sslzoo.utils.seeds import seed_for


def agreement(a, b):
    """{same, other, retrieval} of paired (N, D) embeddings ``a`` and ``b`` (N ≥ 2)."""
    a, b = (np.asarray(x, "float64") for x in (a, b))
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] < 2:
        raise ValueError(f"need two (N, D) arrays of one shape with N >= 2, got {a.shape} "
                         f"and {b.shape}")
    a, b = a - a.mean(0), b - b.mean(0)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    s, n = a @ b.T, a.shape[0]
    return {"same": float(np.trace(s) / n), "other": float((s.sum() - np.trace(s)) / (n * n - n)),
            "retrieval": float(np.mean(s.argmax(1) == np.arange(n)))}


def view_agreement(model, images, seed=0):
    """``agreement`` of the pooled backbone features and the projector outputs of two views
    (the model's own ``view_layer``, drawn with ``seed``; BN in training mode as in a train
    step) of ``images``."""
    views = model.view_layer()(tf.convert_to_tensor(images), seed=seed_for(seed, "probe_views"),
                               training=True)
    v1, v2 = views[:2]
    out = model.forward(tf.concat([v1, v2], 0), training=True)
    n = int(v1.shape[0])
    return {key: agreement(np.asarray(out[key][:n]), np.asarray(out[key][n:]))
            for key in ("pooled", "proj")}


def measure_views(method="simclr", backbone="resnet_tiny", dataset="digits", split="train",
            num_images=256, hparams="", augment="", seed=0, data_dir=None):
    """``view_agreement`` of ``method``'s freshly initialised model (weights drawn with
    ``seed``, and so are the views) on
    the first ``num_images`` images of ``dataset``'s ``split``."""
    import keras


    part = data.load(dataset, split, data_dir=data_dir)
    images = part.first_images(num_images)
    if len(images) < 2:
        raise DataError(f"{dataset} {split} has {len(images)} images; sslzoo-views needs at "
                        "least 2 (choose a larger --split)")
    keras.utils.set_random_seed(seed)
    model = methods.build(method, backbone, part.image_size, augment=augment,
                          **parse_hparams(hparams))
    return {"method": method, "augment": augment, "hparams": hparams,
            "num_images": len(images), **view_agreement(model, images, seed)}
