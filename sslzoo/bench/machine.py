"""What the benchmark ran on, and its peak memory."""
import os
import platform
import resource

import keras
import tensorflow as tf


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gpu_names():
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return names


def describe(precision):
    """CPU model, core counts, TF/Keras/Python versions, the device and the precision."""
    gpus = gpu_names()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"cpu": cpu_model(), "cpu_cores": os.cpu_count(), "usable_cores": usable,
            "device": gpus[0] if gpus else "CPU", "gpus": len(gpus),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "python": platform.python_version(), "precision": precision,
            "platform": platform.platform()}


def on_gpu():
    return bool(tf.config.list_physical_devices("GPU"))


def reset_peak_memory():
    """Reset the GPU's peak-memory counter (the CPU's peak RSS cannot be reset)."""
    if on_gpu():
        tf.config.experimental.reset_memory_stats("GPU:0")


def peak_memory_mb():
    """(peak MB, kind): on a GPU TF's peak allocated memory on GPU:0 since the last
    ``reset_peak_memory``; on a CPU the process's peak resident set size (ru_maxrss) so far."""
    if on_gpu():
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
        return peak / 2 ** 20, "gpu_peak_allocated"
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 2 ** 20 if platform.system() == "Darwin" else 2 ** 10
    return rss / scale, "cpu_peak_rss_process"
