"""Precision policy and distribution strategy, chosen by name with clear errors."""
import json
import os

import keras
import tensorflow as tf
from absl import logging

from sslzoo.errors import ConfigError, unknown_choice

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def has_gpu():
    return bool(tf.config.list_physical_devices("GPU"))


def setup_precision(name="auto"):
    """Set Keras's global dtype policy and return its name.

    ``auto`` picks mixed_float16 on a GPU (Keras wraps the optimizer in a LossScaleOptimizer)
    and float32 on a CPU, where bfloat16 is only faster on CPUs with native bf16 matmuls.
    mixed_float16 without a GPU falls back to mixed_bfloat16, with a warning.
    """
    if name not in PRECISIONS:
        raise unknown_choice("precision", name, PRECISIONS)
    if name == "auto":
        name = "mixed_float16" if has_gpu() else "float32"
        logging.info("--mixed_precision=auto picked %s (%s)", name,
                     "GPU found" if has_gpu() else "no GPU")
    elif name == "mixed_float16" and not has_gpu():
        logging.warning("mixed_float16 needs a GPU; none found, using mixed_bfloat16 instead")
        name = "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(name)
    return name


def is_chief(strategy):
    """Whether this process writes the run directory: always, except on the non-chief workers
    of a multi-worker cluster (TensorFlow's ``should_checkpoint``)."""
    return bool(strategy.extended.should_checkpoint)


def make_strategy(name="default"):
    """A tf.distribute strategy: default (one device), mirrored (all local GPUs),
    multi_worker (hosts from TF_CONFIG) or tpu."""
    if name not in STRATEGIES:
        raise unknown_choice("strategy", name, STRATEGIES)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError("--strategy=multi_worker needs TF_CONFIG describing the cluster "
                              "(see BUILD.md, 'Several workers')")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as e:
            raise ConfigError(f"TF_CONFIG is not valid JSON ({e}); it must describe the cluster "
                              "and this task (see BUILD.md, 'Several workers')") from e
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.NotFoundError, RuntimeError) as e:
        raise ConfigError(f"--strategy=tpu found no TPU ({e}); use --strategy=default") from e
    return tf.distribute.TPUStrategy(resolver)
