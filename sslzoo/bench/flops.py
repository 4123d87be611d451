"""FLOPs of a forward pass, the device's measured peak FLOP/s, and model FLOPs utilisation.

Forward FLOPs come from TensorFlow's profiler: the model's inference forward pass is traced as a
concrete function with a fixed batch, its variables are frozen into constants, and
``tf.compat.v1.profiler`` with ``ProfileOptionBuilder.float_operation()`` sums the FLOPs that
TensorFlow registers per op (Conv2D, MatMul, the BN and residual element-wise ops, ...). If
the profiler fails or counts nothing, ``forward_flops`` falls back to an analytic count of the
Conv2D and Dense layers only (``analytic_flops``); it says which in its second return value.

One train step costs ≈ 3 × the forward FLOPs (forward, plus a backward pass of about twice
the forward), so with F_fwd(2N) the forward FLOPs of the 2N views of a batch of N images,
step time t and the device's peak P (FLOP/s):

    MFU = 3 · F_fwd(2N) / (t · P)
"""
import math
import time

import keras
import tensorflow as tf
from absl import logging

PROFILER, ANALYTIC = "tf_profiler", "analytic_conv_dense"


def _input_spec(batch, image_size):
    return tf.TensorSpec((batch, image_size, image_size, 3), tf.float32)


def profiler_flops(fn, batch, image_size):
    """FLOPs of ``fn(images)`` (images: (batch, S, S, 3) float32) by TF's profiler."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    concrete = tf.function(fn).get_concrete_function(_input_spec(batch, image_size))
    frozen = convert_variables_to_constants_v2(concrete)
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    profile = tf.compat.v1.profiler.profile(frozen.graph, cmd="op", options=opts)
    return int(profile.total_float_ops)


def analytic_flops(model, batch):
    """FLOPs of the Conv2D and Dense layers of ``model`` (nested models included) for
    ``batch`` inputs: 2·H_out·W_out·k_h·k_w·(C_in/groups)·C_out per image and conv, and
    2·d_in·d_out per row and dense layer. Normalisation, activations and adds are left out."""
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(
                layer, keras.layers.Conv2DTranspose):
            _, h, w, _ = layer.output.shape
            total += 2 * h * w * math.prod(layer.kernel.shape)
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * math.prod(layer.kernel.shape)
    return int(total * batch)


def forward_flops(model, batch, image_size):
    """(FLOPs of ``model(images, training=False)`` on ``batch`` images, how they were counted).
    ``model`` is a Keras model, or any such callable (then the profiler must count it)."""
    try:
        flops = profiler_flops(lambda x: model(x, training=False), batch, image_size)
        if flops > 0:
            return flops, PROFILER
        logging.warning("the TF profiler counted no FLOPs; counting conv/dense layers instead")
    except Exception as e:  # the profiler is a TF1 tool; any failure falls back
        logging.warning("the TF profiler failed (%s); counting conv/dense layers instead", e)
    if not isinstance(model, keras.Model):
        raise RuntimeError(f"the TF profiler could not count the FLOPs of {model!r}, and only a "
                           "Keras model's layers can be counted instead")
    return analytic_flops(model, batch), ANALYTIC


def views_forward_flops(model, batch, image_size, local_crops=0, local_size=0):
    """(F_fwd of the 2·``batch`` views at ``image_size`` plus ``local_crops``·``batch`` local
    crops of ``local_size`` px, how they were counted). The local crops are counted as the
    global views' FLOPs per image × (local_size / image_size)²: exact for crops at the global
    size (MMCR's, EMP-SSL's), the pixel ratio for smaller ones (DINO's; exact for a conv net up
    to border effects, and for a ViT it leaves out attention's quadratic term)."""
    fwd, source = forward_flops(model, 2 * batch, image_size)
    if local_crops:
        fwd += round(fwd / 2 * local_crops * (local_size / image_size) ** 2)
    return fwd, source


def train_step_flops(fwd_flops):
    """FLOPs of one train step: forward + backward ≈ 3 × forward."""
    return 3 * fwd_flops


def mfu(step_flops, step_seconds, peak_flops_per_sec):
    """Model FLOPs utilisation: step FLOPs / (step time · peak FLOP/s)."""
    return step_flops / (step_seconds * peak_flops_per_sec)


def peak_flops(dtype="float32", size=None, chain=10, repeats=3, device=None):
    """The device's measured peak FLOP/s: the best of ``repeats`` timed runs of ``chain``
    chained (size × size) @ (size × size) matmuls in one tf.function (2·size³ FLOPs each).

    ``size`` defaults to 8192 on a GPU and 1024 on a CPU. On GPUs with TensorFloat-32 enabled
    (TF's default on Ampere and newer), float32 matmuls run in TF32.
    """
    gpu = bool(tf.config.list_physical_devices("GPU"))
    size = int(size or (8192 if gpu else 1024))
    device = device or ("/GPU:0" if gpu else "/CPU:0")
    with tf.device(device):
        a = tf.random.normal((size, size), dtype=dtype)
        # Scaled so that the chained products neither overflow nor vanish.
        b = tf.cast(tf.random.normal((size, size)) / math.sqrt(size), dtype)

        @tf.function
        def loop(x):
            for _ in range(chain):
                x = tf.matmul(x, b)
            return tf.reduce_sum(tf.cast(x, "float32"))

        loop(a).numpy()  # trace and warm up
        best = math.inf
        for _ in range(repeats):
            t = time.perf_counter()
            loop(a).numpy()
            best = min(best, time.perf_counter() - t)
    return 2 * size ** 3 * chain / best
