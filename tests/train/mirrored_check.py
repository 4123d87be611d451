"""One device vs MirroredStrategy over two logical CPUs, on the same global batch.

Run as ``python -m tests.train.mirrored_check simclr [byol ...]``: logical devices must be set
up before TensorFlow initialises its devices, so this runs in a fresh process; the collectives
of two MirroredStrategy instances in one process clash, so the methods named share one. For
each it trains one model on one device and one on two replicas, from the same seed, for STEPS
steps of the same fixed view pairs (no augmentation), SGD, float32, ``sync_bn=True`` (global
BatchNorm in the backbone and the heads; with per-replica BN the statistics of 8 and of 16
images would differ). It prints one JSON line per method:

    {"method", "loss_single", "loss_mirrored" (per step), "update_rel_err" (after 1 step:
     ‖Δw_mirrored − Δw_single‖ / ‖Δw_single‖ over the trainable weights but the probe's),
     "max_abs_diff" (after 1 step, over every weight but the online probe's, BN moving
     statistics included), "max_abs_diff_probe" (the probe's),
     "logs_single", "logs_mirrored" (the last step's logs: crr/..., probe_acc, collapse_std)}
"""
import json
import sys

import tensorflow as tf

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from sslzoo import methods  # noqa: E402
from sslzoo.optim import make_optimizer  # noqa: E402

SIZE, BATCH, STEPS = 16, 16, 2
HEADS = {"proj_hidden_dim": 32, "proj_dim": 16}
# BT's and VICReg's losses (~10–30) move the first conv ~10× more than SimCLR's at lr 0.1;
# at 0.01 their first update is about as large (max |Δw| ≈ 0.1).
LR = {"barlow_twins": 0.01, "vicreg": 0.01}
# Per-method heads and schedules. SwAV: few prototypes, never frozen, and a queue of one
# global batch that is full after step 1, so step 2 computes its codes over [queue; batch].
EXTRA = {"byol": {"pred_hidden_dim": 32}, "mocov3": {"pred_hidden_dim": 32},
         "simsiam": {"pred_hidden_dim": 32}, "nnclr": {"pred_hidden_dim": 32, "queue_size": 32},
         "wmse": {"w_size": 8, "w_eps": 0.1}, "emp_ssl": {"inv_weight": 2.0, "patches": 2},
         "swav": {"num_prototypes": 10, "freeze_prototypes_epochs": 0, "queue_length": BATCH,
                  "queue_start_epoch": 0},
         "mae": {"decoder_depth": 1, "decoder_width": 32}}
BACKBONE = {"mae": "vit_tiny"}  # MAE trains only on a ViT (no projector); the rest resnet_tiny


def fixed_batch():
    """16 digits at 16×16 (view 1) and their mirror images (view 2), with labels."""
    d = load_digits()
    x = np.kron(d.images[:BATCH] * (255 / 16), np.ones((2, 2)))[..., None].repeat(3, -1)
    x = tf.constant(x, tf.float32)
    return (x, tf.reverse(x, axis=[2])), tf.constant(d.target[:BATCH], tf.int32)


class StepLogs(keras.callbacks.Callback):
    """Each step's logs, and every weight after the first step."""

    def __init__(self):
        super().__init__()
        self.logs, self.after_first = [], None

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append({k: float(np.asarray(v).reshape(-1)[0]) for k, v in logs.items()})
        if batch == 0:
            self.after_first = [w.numpy().copy() for w in self.model.weights]


def train(method, strategy, crr_every):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = methods.build(method, BACKBONE.get(method, "resnet_tiny"), image_size=SIZE, num_classes=10,
                              crr_every=crr_every, sync_bn=True,
                              **({} if method in BACKBONE else HEADS), **EXTRA.get(method, {}))
        methods.set_training_length(model, STEPS, STEPS)
        model.compile(make_optimizer("sgd", LR.get(method, 0.1), momentum=0.9))
        model.build_all()
    start = [w.numpy().copy() for w in model.weights]
    steps_logs = StepLogs()
    model.fit(tf.data.Dataset.from_tensors(fixed_batch()).repeat(STEPS), epochs=1, verbose=0,
              callbacks=[steps_logs])
    # Keras logs the running mean of the loss; undo it to get each step's loss.
    means = [log["loss"] for log in steps_logs.logs]
    losses = [(k + 1) * m - k * (means[k - 1] if k else 0.0) for k, m in enumerate(means)]
    trainable = [(w.trainable, "probe" in w.path) for w in model.weights]
    return start, steps_logs.after_first, trainable, losses, steps_logs.logs[-1]


def compare(method, crr_every, single, mirrored):
    w0, w1, trainable, loss_1, logs_1 = train(method, single, crr_every)
    _, w2, _, loss_2, logs_2 = train(method, mirrored, crr_every)
    idx = [i for i, (t, probe) in enumerate(trainable) if t and not probe]
    d1 = np.concatenate([(w1[i] - w0[i]).ravel() for i in idx])
    d2 = np.concatenate([(w2[i] - w0[i]).ravel() for i in idx])

    def max_abs(probe):
        return max(float(np.max(np.abs(a - b))) for a, b, (_, p) in zip(w1, w2, trainable)
                   if p == probe)

    return {"method": method, "loss_single": loss_1, "loss_mirrored": loss_2,
            "update_rel_err": float(np.linalg.norm(d2 - d1) / np.linalg.norm(d1)),
            "max_abs_diff": max_abs(False), "max_abs_diff_probe": max_abs(True),
            "logs_single": logs_1, "logs_mirrored": logs_2}


if __name__ == "__main__":
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert two.num_replicas_in_sync == 2
    for name in sys.argv[1:]:
        # CRR on for SimCLR: its ΔR must be the global batch's on both sides.
        print(json.dumps(compare(name, 1 if name == "simclr" else 0, one, two)), flush=True)
