"""DeepCluster-v2 on one device vs MirroredStrategy over two logical CPUs (a fresh process:
importing tests.train.mirrored_check sets up the two devices before TensorFlow starts).

``python -m tests.methods.deepcluster_mirrored`` trains both from the same seed for STEPS
steps of one epoch each on the same 16 digits and their mirror images (with their indices),
SGD, float32, ``sync_bn=True``: step 0 fills the memory bank (loss 0), steps 1 and 2 run
k-means on it and train. It prints one JSON line: each side's per-step losses, the largest
differences of the bank and the centroids (after the last step) and of the weights after
the first update (step 1; later steps amplify float32 rounding, see tests/train/
test_distributed.py), and whether the assignments agree.
"""
import json

import keras
import numpy as np
import tensorflow as tf

from sslzoo import methods
from sslzoo.optim import make_optimizer
from tests.train.mirrored_check import BATCH, SIZE, fixed_batch

STEPS = 3
HPARAMS = dict(proj_hidden_dim=32, proj_dim=16, num_prototypes=4, prototype_sets=3,
               memory_size=BATCH)


def train(strategy):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = methods.build("deepcluster_v2", "resnet_tiny", image_size=SIZE, num_classes=10,
                              crr_every=0, sync_bn=True, **HPARAMS)
        methods.set_training_length(model, STEPS, 1)
        model.compile(make_optimizer("sgd", 0.1, momentum=0.9))
        model.build_all()
    views, labels = fixed_batch()
    data = tf.data.Dataset.from_tensors((views, labels, tf.range(BATCH))).repeat()
    start = trainable(model)
    after = keras.callbacks.LambdaCallback(  # the weights after the first update (step 1)
        on_epoch_end=lambda epoch, logs: epoch == 1 and start.append(trainable(model)))
    history = model.fit(data, epochs=STEPS, steps_per_epoch=1, verbose=0, callbacks=[after])
    state = {k: getattr(model, k).numpy() for k in ("memory", "stored", "centroids",
                                                    "assignments")}
    update = np.concatenate([(b - a).ravel() for a, b in zip(start[:-1], start[-1])])
    return history.history["loss"], state, start[-1], update


def trainable(model):
    return [w.numpy() for w in model.weights if w.trainable and "probe" not in w.path]


if __name__ == "__main__":
    one = train(tf.distribute.OneDeviceStrategy("/cpu:0"))
    two = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    (loss1, s1, w1, d1), (loss2, s2, w2, d2) = one, two
    print(json.dumps({
        "loss_single": loss1, "loss_mirrored": loss2,
        "memory_diff": float(np.max(np.abs(s1["memory"] - s2["memory"]))),
        "stored": [s1["stored"].tolist(), s2["stored"].tolist()],
        "centroids_diff": float(np.max(np.abs(s1["centroids"] - s2["centroids"]))),
        "same_assignments": bool(np.array_equal(s1["assignments"], s2["assignments"])),
        "assigned": int(np.sum(s1["assignments"] >= 0)),
        "update_rel_err": float(np.linalg.norm(d2 - d1) / np.linalg.norm(d1)),
        "weights_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2))}),
        flush=True)
