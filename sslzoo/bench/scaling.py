"""``run_scaling``: how the ΔR (CRR) cost and the train step grow with the batch and the width.

A batch of n images gives 2n views, so a CRR monitor sees 2n rows; ``batch`` below always
counts images, as ``run_benchmark``'s ``batch_size`` does.

1. **ΔR cost grid.** For every batch n and width d, a ``CRRMonitor`` with the settings every
   sslzoo model gives its taps (``every=1``, the ``pairs`` partition, ε = 0.5, rows
   L2-normalised, float32) is called in training mode on random float32 features (2n, d)
   inside a ``tf.function`` (forward only, no XLA). That is the whole measurement a train step
   makes per tap: the finite check, ΔR, R and Rc, and the updates of its variables. R is a
   logdet on the cheaper Gram side, min(2n, d) (``coding_rate._pick_side``); Rc of the pairs
   is n 2×2 determinants, O(n·d). So the expected cost is O(n·d·min(n, d) + min(n, d)³):
   linear in n while 2n ≥ d, about quadratic while 2n < d, never cubic. Every cell is called
   ``delta_r_warmup`` times after tracing (untimed), then all cells are timed round-robin
   ``delta_r_repeats`` times (``timing.alternate``, so drifts of a shared machine hit all
   alike); a cell's figure is the median of its runs.
2. **Slopes.** The least-squares slope of log(time) on log(n) at each d, and on log(d) at each
   n: ``fit`` over all the points, ``last`` between the two largest (closest to the asymptote;
   small cells are dominated by fixed per-call costs, which flattens ``fit``). ``sub_cubic``:
   every slope in n, ``fit`` and ``last``, is below 3.
3. **Step time vs batch.** For each batch the method's model with CRR on every step
   (``sslzoo``) and with ``crr_every=0`` (``sslzoo_crr_off``) are built as ``run_benchmark``
   builds them (``run.build_model``: the paper optimizer at the batch-scaled rate, the probe
   when ``probe``) and timed round-robin ``repeats`` times with ``timing.time_steps`` on a
   fixed in-memory batch. The ΔR cost of that model's own taps (conv maps pooled by the
   monitor, as in the step) is timed alone as in 1, with the model's ``jit_compile``, and
   given as a fraction of the CRR-off step (``delta_r_fraction``), next to the measured
   on/off ratio (``crr_overhead``, noisier: it is a difference of two step times).
"""
import gc
import statistics

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from sslzoo.bench import machine
from sslzoo.bench.report import machine_line
from sslzoo.bench.run import NUM_CLASSES, build_model
from sslzoo.bench.timing import alternate, batch_dataset, fixed_batch, time_call, time_steps
from sslzoo.crr.monitor import CRRMonitor
from sslzoo.errors import ConfigError
from sslzoo.losses.coding_rate import _pick_side
from sslzoo.train.device import setup_precision

DEFAULT_BATCHES = (64, 128, 256, 512, 1024)
DEFAULT_WIDTHS = (128, 256, 512, 1024, 2048)
CUBIC = 3.0
STEP_CONFIGS = ("sslzoo", "sslzoo_crr_off")


# ---------------------------------------------------------------------------------------------
# slopes


def loglog_slope(x, y):
    """The least-squares slope of log(y) on log(x): the exponent p of y ∝ x^p."""
    x, y = np.asarray(x, "float64"), np.asarray(y, "float64")
    if x.shape != y.shape or x.ndim != 1 or len(np.unique(x)) < 2:
        raise ConfigError(f"need at least two distinct x with one y each, got {x} and {y}")
    if (x <= 0).any() or (y <= 0).any():
        raise ConfigError(f"log-log slopes need positive values, got {x} and {y}")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def growth(x, y):
    """{"fit": the slope over all points, "last": over the two largest x}, or None for fewer
    than two points."""
    order = np.argsort(x)
    x, y = np.asarray(x, "float64")[order], np.asarray(y, "float64")[order]
    if len(x) < 2:
        return None
    return {"fit": loglog_slope(x, y), "last": loglog_slope(x[-2:], y[-2:])}


# ---------------------------------------------------------------------------------------------
# ΔR timing


def monitor_function(monitors, inputs, jit_compile=False):
    """A ``tf.function``, traced here for ``inputs``, that runs every monitor on its input in
    training mode (one ΔR measurement each, as a train step does) and returns their ΔR. (The
    concrete function: calling it never retraces, so TF's retracing warning stays quiet.)"""
    @tf.function(jit_compile=jit_compile)
    def run(*xs):
        for mon, x in zip(monitors, xs):
            mon(x, training=True)
        return [mon.delta_r.value for mon in monitors]
    return run.get_concrete_function(*inputs)


def random_features(shape, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    return tf.cast(tf.constant(rng.standard_normal(shape, dtype="float32")), dtype)


def time_monitors(monitors, inputs, repeats, warmup, jit_compile=False):
    """(median seconds, runs) of one measurement by every monitor on its input."""
    fn = monitor_function(monitors, inputs, jit_compile)
    for _ in range(warmup):
        time_call(fn, *inputs)
    runs = [time_call(fn, *inputs) for _ in range(repeats)]
    return statistics.median(runs), runs


def delta_r_grid(batches, widths, repeats=7, warmup=2, seed=0):
    """One record per (batch n, width d): the median seconds of the default monitor's
    measurement of (2n, d) features (see the module docstring), its runs and its Gram side."""
    logging.info("ΔR grid: batches %s × widths %s", list(batches), list(widths))
    cells = {}
    for n in batches:
        for d in widths:
            x = random_features((2 * n, d), seed)
            fn = monitor_function([CRRMonitor(every=1, name=f"crr_{n}x{d}")], [x])
            for _ in range(warmup):
                time_call(fn, x)
            cells[(n, d)] = (fn, x)
    timing = alternate({f"{n}x{d}": (lambda f=fn, x=x: time_call(f, x))
                        for (n, d), (fn, x) in cells.items()}, repeats)
    return [{"batch": n, "rows": 2 * n, "width": d, "gram_side": _pick_side(2 * n, d, "auto"),
             "gram_size": min(2 * n, d), "seconds": timing["median"][f"{n}x{d}"],
             "runs": timing["runs"][f"{n}x{d}"]} for n, d in cells]


def grid_slopes(cells):
    """(slopes in n at each width, slopes in d at each batch, max slope in n or None)."""
    batches = sorted({c["batch"] for c in cells})
    widths = sorted({c["width"] for c in cells})
    t = {(c["batch"], c["width"]): c["seconds"] for c in cells}
    in_batch = [{"width": d, **(growth(batches, [t[n, d] for n in batches]) or {})}
                for d in widths]
    in_width = [{"batch": n, **(growth(widths, [t[n, d] for d in widths]) or {})}
                for n in batches]
    worst = [max(s["fit"], s["last"]) for s in in_batch if "fit" in s]
    return in_batch, in_width, (max(worst) if worst else None)


# ---------------------------------------------------------------------------------------------
# step time vs batch


def tap_delta_r_seconds(model, batch, repeats=7, warmup=2, seed=0):
    """(median seconds, runs, {tap: shape}) of one ΔR measurement at every CRR tap of
    ``model`` for a batch of ``batch`` images (2·batch views), measured alone."""
    size = model.image_size
    out = model.forward(tf.zeros((2, size, size, 3)), training=False)
    shapes = {t: (2 * batch, *out[t].shape[1:]) for t in model.taps}
    monitors = [CRRMonitor.from_config(model.monitors[t].get_config()) for t in model.taps]
    dtype = keras.mixed_precision.global_policy().compute_dtype
    inputs = [random_features(shapes[t], seed + i, dtype) for i, t in enumerate(model.taps)]
    median, runs = time_monitors(monitors, inputs, repeats, warmup, bool(model.jit_compile))
    return median, runs, shapes


def step_scaling(method, backbone, batches, steps=3, warmup=2, repeats=3, image_size=32,
                 stem="auto", probe=True, hparams=None, delta_r_repeats=7, delta_r_warmup=2,
                 seed=0):
    """One record per batch: the medians of the CRR-on and CRR-off steps, their runs, and the
    ΔR cost of the taps alone (see the module docstring)."""
    records = []
    for b in batches:
        logging.info("step time at batch %d: building the CRR-on and CRR-off models", b)
        keras.utils.set_random_seed(seed)
        build = dict(method=method, backbone=backbone, image_size=image_size, batch_size=b,
                     stem=stem, probe=probe, hparams=hparams)
        models = {c: build_model(c, **build)[0] for c in STEP_CONFIGS}
        ds = batch_dataset(fixed_batch(b, image_size, NUM_CLASSES, seed))
        timing = alternate({c: (lambda m=m: time_steps(m, ds, steps, warmup))
                            for c, m in models.items()}, repeats)
        taps, tap_runs, shapes = tap_delta_r_seconds(models["sslzoo"], b, delta_r_repeats,
                                                     delta_r_warmup, seed)
        t = timing["median"]
        logging.info("batch %d: %.4f s/step CRR on, %.4f off; ΔR of the taps %.2f ms", b,
                     t["sslzoo"], t["sslzoo_crr_off"], 1e3 * taps)
        records.append({
            "batch": b, "views": 2 * b, "step_seconds": t, "step_seconds_runs": timing["runs"],
            "images_per_sec": b / t["sslzoo"], "crr_overhead": t["sslzoo"] / t["sslzoo_crr_off"],
            "delta_r_taps_seconds": taps, "delta_r_taps_seconds_runs": tap_runs,
            "delta_r_fraction": taps / t["sslzoo_crr_off"],
            "tap_shapes": {k: list(v) for k, v in shapes.items()},
            "jit_compile": bool(models["sslzoo"].jit_compile)})
        del models, ds
        gc.collect()
    return records


def _sizes(name, values, low):
    values = sorted({int(v) for v in values})
    if not values or values[0] < low:
        raise ConfigError(f"{name} must be integers >= {low}, got {values}")
    return values


def run_scaling(method="simclr", backbone="resnet_tiny", batches=DEFAULT_BATCHES,
                widths=DEFAULT_WIDTHS, steps=3, warmup=2, repeats=3, delta_r_repeats=7,
                delta_r_warmup=2, image_size=32, precision="auto", stem="auto", probe=True,
                hparams=None, seed=0):
    """The scaling study (see the module docstring); returns the dict that ``scaling.json``
    holds."""
    batches = _sizes("batches", batches, 2)  # contrastive losses need negatives
    widths = _sizes("widths", widths, 1)
    if min(steps, warmup, repeats, delta_r_repeats, delta_r_warmup) < 1:
        raise ConfigError("steps, warmup, repeats, delta_r_repeats and delta_r_warmup must "
                          "all be >= 1 (the first call of a function traces it)")
    precision = setup_precision(precision)
    cells = delta_r_grid(batches, widths, delta_r_repeats, delta_r_warmup, seed)
    in_batch, in_width, worst = grid_slopes(cells)
    steps_out = step_scaling(method, backbone, batches, steps, warmup, repeats, image_size,
                             stem, probe, hparams, delta_r_repeats, delta_r_warmup, seed)
    step_slopes = {c: growth(batches, [r["step_seconds"][c] for r in steps_out])
                   for c in STEP_CONFIGS}
    step_slopes["delta_r_taps"] = growth(batches, [r["delta_r_taps_seconds"] for r in steps_out])
    return {
        "delta_r": {"cells": cells, "slopes_in_batch": in_batch, "slopes_in_width": in_width,
                    "max_batch_slope": worst,
                    "sub_cubic": None if worst is None else bool(worst < CUBIC)},
        "step": {"records": steps_out, "slopes_in_batch": step_slopes},
        "machine": machine.describe(precision),
        "settings": {
            "method": method, "backbone": backbone, "batches": batches, "widths": widths,
            "steps": steps, "warmup": warmup, "repeats": repeats,
            "delta_r_repeats": delta_r_repeats, "delta_r_warmup": delta_r_warmup,
            "image_size": image_size, "stem": stem, "precision": precision,
            "compute_dtype": keras.mixed_precision.global_policy().compute_dtype,
            "probe": probe, "hparams": dict(hparams or {}), "seed": seed,
            "delta_r_monitor": {k: v for k, v in CRRMonitor().get_config().items()
                                if k in ("every", "eps", "partition", "normalize", "fmap")},
            "delta_r_dtype": "float32", "delta_r_jit_compile": False},
    }


# ---------------------------------------------------------------------------------------------
# Markdown


def _slope(s):
    return "–" if not s or "fit" not in s else f"{s['fit']:.2f} / {s['last']:.2f}"


def markdown(result):
    """A Markdown page: the ΔR grid with its slopes, the step times per batch, the machine."""
    m, s, dr = result["machine"], result["settings"], result["delta_r"]
    t = {(c["batch"], c["width"]): c["seconds"] for c in dr["cells"]}
    mark = {(c["batch"], c["width"]): "†" if c["gram_side"] == "m" else "" for c in dr["cells"]}
    in_width = {r["batch"]: r for r in dr["slopes_in_width"]}
    lines = [f"# sslzoo scaling: ΔR cost and {s['method']} / {s['backbone']} step time", "",
             machine_line(m), "",
             "## ΔR cost of one CRR tap (ms)", "",
             f"One monitor measurement (pairs partition, ε = {s['delta_r_monitor']['eps']:g}, "
             f"float32, tf.function) of the 2n views of n images at width d; median of "
             f"{s['delta_r_repeats']} round-robin runs after {s['delta_r_warmup']} warmup. "
             "The logdet of R is on the d×d Gram side, or the 2n×2n one (†) where 2n < d. "
             "Slopes are log-log exponents, all points / the two largest.", "",
             "| n (2n rows) | " + " | ".join(f"d={d}" for d in s["widths"]) + " | slope in d |",
             "|---" * (len(s["widths"]) + 2) + "|"]
    for n in s["batches"]:
        lines.append(f"| {n} ({2 * n}) | "
                     + " | ".join(f"{1e3 * t[n, d]:.2f}{mark[n, d]}" for d in s["widths"])
                     + f" | {_slope(in_width[n])} |")
    lines.append("| slope in n | " + " | ".join(_slope(r) for r in dr["slopes_in_batch"])
                 + " | |")
    if dr["sub_cubic"] is not None:
        lines += ["", f"Largest slope in n: {dr['max_batch_slope']:.2f}, so the ΔR cost is "
                  f"**{'sub-cubic' if dr['sub_cubic'] else 'NOT sub-cubic'}** in the batch size "
                  "over this range."]
    records = result["step"]["records"]
    lines += ["", f"## Step time vs batch ({s['method']}, {s['backbone']}, {s['image_size']} px)",
              "",
              f"Median of {s['repeats']} round-robin runs of {s['steps']} timed steps after "
              f"{s['warmup']} warmup; ΔR of the {len(records[0]['tap_shapes'])} taps timed "
              "alone.", "",
              "| batch (views) | CRR off s/step | CRR on s/step | on/off | ΔR of the taps, ms "
              "| ΔR / step | images/s (CRR on) |", "|---|---|---|---|---|---|---|"]
    for r in records:
        st = r["step_seconds"]
        lines.append(f"| {r['batch']} ({r['views']}) | {st['sslzoo_crr_off']:.3f} | "
                     f"{st['sslzoo']:.3f} | {r['crr_overhead']:.3f} | "
                     f"{1e3 * r['delta_r_taps_seconds']:.2f} | {100 * r['delta_r_fraction']:.2f}% "
                     f"| {r['images_per_sec']:.1f} |")
    sl = result["step"]["slopes_in_batch"]
    lines.append(f"| slope in batch | {_slope(sl['sslzoo_crr_off'])} | {_slope(sl['sslzoo'])} "
                 f"| | {_slope(sl['delta_r_taps'])} | | |")
    return "\n".join(lines) + "\n"
