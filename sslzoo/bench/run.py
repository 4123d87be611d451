"""``run_benchmark``: how fast an sslzoo train step is, and what its parts cost.

Four models are built, compiled and ``build_all()``-ed as ``sslzoo.train.pretrain`` does it (the
method's paper optimizer, its learning rate scaled to the batch, a warmup + cosine schedule):

- ``sslzoo``: the method with its defaults, CRR monitoring every ``crr_every``-th step (default
  1: every step, as pretraining's default ``--crr_every``);
- ``sslzoo_crr_off``: the same with ``crr_every=0``;
- ``umm``: ``UMM(sslzoo_crr_off-like model, **umm)``;
- ``plain``: the plain Keras step of ``sslzoo.bench.plain`` (same architecture, no probe/CRR).

A model that cannot be built is skipped, the reason in ``not_measured`` and its figures null:
``plain`` for every method but SimCLR (``sslzoo_overhead`` null, ``plain_reference`` false),
``umm`` for a model UMM refuses (``sslzoo.umm.refusal``: MAE, multi-crop).

A method with a memory bank (DeepCluster-v2) is timed as pretraining runs it: a bank row for
each image of the pipeline's data set, k-means at every epoch start (``kmeans_every`` steps).
The fixed batch's indices move through the bank (``timing.indexed_dataset``), the warmup covers
the first epoch (which fills the bank), and each timed figure averages whole epochs
(lcm(``crr_every``, steps per epoch) steps), so the k-means counts at its share.

The sslzoo models carry the online linear probe when ``probe`` is set (as pretraining on
labelled data does). Each model trains on one fixed in-memory batch of its views (two, or 2 + L
for a method with L local crops: DINO's multi-crop, MMCR's and EMP-SSL's q views), so no input
pipeline is timed; the four are measured round-robin ``repeats`` times (``timing.alternate``)
and every figure uses the medians. With t_x the median step time of model x and N images
(2N views) per step:

    images_per_sec             = N / t_sslzoo
    plain_keras_images_per_sec = N / t_plain
    sslzoo_overhead            = t_sslzoo_crr_off / t_plain       (1.0: as fast as plain Keras)
    crr_overhead               = t_sslzoo / t_sslzoo_crr_off      (1.0: CRR costs nothing)
    umm_overhead               = t_umm / t_sslzoo_crr_off
    mfu                        = 3·F_fwd(views) / (t_sslzoo · P)  (``sslzoo.bench.flops``)

F_fwd counts the method's ``counted_forward()``: the online backbone and projector (what every
method trains; MAE: its masked encoder and decoder); a teacher's forward pass or a predictor is
not counted, so for BYOL, MoCo or DINO the MFU is a lower bound.

``pipeline_images_per_sec`` is what ``ssl_batches(digits train, N, model.view_layer())``
delivers iterated alone (no model), after one epoch of warmup that fills its cache.

``peak_memory_mb`` is taken over one run of the ``sslzoo`` model made before the other models
exist: on a GPU TF's peak allocated memory on GPU:0 (``memory_kind`` gpu_peak_allocated), on a
CPU the process's peak resident set size so far (cpu_peak_rss_process: TF's runtime included).
"""
import math
import statistics
import time

import keras
from absl import logging

from sslzoo import data as sdata
from sslzoo import methods
from sslzoo.bench import flops as fl
from sslzoo.bench import machine
from sslzoo.bench.plain import PLAIN, plain_like
from sslzoo.bench.report import targets
from sslzoo.bench.timing import (alternate, batch_dataset, fixed_batch, indexed_dataset,
                                 time_steps)
from sslzoo.data.pipeline import batches_per_pass, ssl_batches
from sslzoo.errors import ConfigError
from sslzoo.optim import paper_optimizer
from sslzoo.train.device import setup_precision
from sslzoo.umm import UMM, refusal

# UMM as `sslzoo-pretrain --umm` runs it from scratch (early part trained at the full rate).
DEFAULT_UMM = {"early": "auto", "early_lr_mult": 1.0}
NUM_CLASSES = 10  # labels of the fixed batch, for the online probe
PIPELINE_DATASET = "digits"
# A schedule like pretraining's, long enough that the benchmark never reaches its end.
SCHEDULE_STEPS, SCHEDULE_WARMUP = 100_000, 1_000


def make_optimizer_for(method_cls, batch_size, backbone="resnet18"):
    """The method's paper optimizer for ``backbone`` at its batch-scaled learning rate, warmup +
    cosine."""
    opt, info = paper_optimizer(method_cls.optim_defaults_for(backbone), batch_size,
                                SCHEDULE_STEPS, SCHEDULE_WARMUP)
    return opt, {k: info[k] for k in ("optimizer", "peak_learning_rate", "weight_decay")}


CONFIGS = ("sslzoo", "sslzoo_crr_off", "umm", "plain")


def build_model(config, method, backbone, image_size, batch_size, stem="auto", probe=True,
                umm=None, hparams=None, like=None, crr_every=1, epoch=None):
    """(compiled, built model, optimizer settings) for one of ``CONFIGS``; ``plain`` copies the
    architecture of ``like``, an sslzoo model of the method. A method with a memory bank
    (``needs_index``) needs ``epoch`` = (training images, steps per epoch): its bank holds a
    row per image and its k-means runs at every epoch start, as in pretraining."""
    method_cls = methods.get(method)
    hparams = dict(hparams or {})
    if method_cls.needs_index:
        if epoch is None:
            raise ConfigError(f"{method}'s memory bank needs the training-set size and the "
                              "steps per epoch (build_model(..., epoch=(images, steps)))")
        hparams = {"memory_size": epoch[0], **hparams}
    if config == "plain":
        model = plain_like(like, stem=stem)
    else:
        model = methods.build(method, backbone, image_size=image_size,
                              num_classes=NUM_CLASSES if probe else None, stem=stem,
                              crr_every=crr_every if config == "sslzoo" else 0, **hparams)
        if config == "umm":
            model = UMM(model, **{**DEFAULT_UMM, **(umm or {})})
        if method_cls.needs_index:
            methods.set_training_length(model, SCHEDULE_STEPS, epoch[1])
    opt, info = make_optimizer_for(method_cls, batch_size, backbone)
    model.compile(opt)
    model.build_all()
    return model, info


def load_pipeline_data(image_size, data_dir=None):
    return sdata.load(PIPELINE_DATASET, split="train", data_dir=data_dir or None,
                      image_size=image_size)


def pipeline_images_per_sec(data, batch_size, view_layer, steps, repeats=3, seed=0):
    """(median images/s, per-repeat values) of the real SSL input pipeline over ``data``, its
    views made by ``view_layer`` (a model's ``view_layer()``).

    One epoch is drawn first (tracing, and filling the cache as pretraining's first epoch
    does); each repeat then times max(steps, one epoch) batches.
    """
    ds = ssl_batches(data, batch_size, view_layer, seed=seed)
    per_epoch = data.num_examples // batch_size
    it = iter(ds)
    for _ in range(per_epoch):
        next(it)
    n = max(steps, per_epoch)
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            next(it)
        runs.append(n * batch_size / (time.perf_counter() - t))
    return statistics.median(runs), runs


def measure_peak(compute_dtype):
    """{"peak_flops_per_sec", "peak_flops_dtype", "peak_float32_flops_per_sec"}: the peak in
    float32, and in the policy's compute dtype when that differs (it is the one MFU uses)."""
    f32 = fl.peak_flops("float32")
    out = {"peak_float32_flops_per_sec": f32, "peak_flops_per_sec": f32,
           "peak_flops_dtype": "float32"}
    if compute_dtype != "float32":
        out.update(peak_flops_per_sec=fl.peak_flops(compute_dtype),
                   peak_flops_dtype=compute_dtype)
    return out


def run_benchmark(method="simclr", backbone="resnet18", batch_size=128, steps=10, image_size=32,
                  repeats=3, warmup=3, precision="auto", stem="auto", probe=True, umm=None,
                  hparams=None, data_dir=None, seed=0, crr_every=1):
    """Measure one method/backbone/batch and return the figures (see the module docstring).

    ``batch_size`` counts images; each gives two views, so a step sees 2·batch_size images.
    With ``crr_every`` = N, ``steps`` must be a multiple of N, so that every timed run holds
    the same steps/N measuring steps.
    """
    if batch_size < 2:
        raise ConfigError(f"batch_size must be >= 2 (contrastive losses need negatives), "
                          f"got {batch_size}")
    if steps < 1 or warmup < 1 or repeats < 1:
        raise ConfigError(f"need steps >= 1, warmup >= 1 (the first step traces) and "
                          f"repeats >= 1; got {steps}, {warmup}, {repeats}")
    if crr_every < 1 or steps % crr_every:
        raise ConfigError(f"crr_every must be >= 1 and divide steps ({steps}), so that every "
                          f"timed run holds the same number of CRR measurements; got "
                          f"{crr_every}. Pick --steps as a multiple of --crr_every")
    data = load_pipeline_data(image_size, data_dir)  # fails fast on a batch larger than it
    if batch_size > data.num_examples:
        raise ConfigError(f"batch_size {batch_size} is larger than the {data.num_examples} "
                          f"images of {PIPELINE_DATASET} train that the pipeline is timed on")
    epoch, cycle = None, crr_every
    if methods.get(method).needs_index:  # the bank fills in the first epoch, k-means each next
        epoch = (data.num_examples, batches_per_pass(data, batch_size))
        cycle = math.lcm(crr_every, epoch[1])
        warmup = max(warmup, epoch[1] + 1)
        if steps % cycle:
            raise ConfigError(f"{method} runs k-means at every epoch start ({epoch[1]} steps of "
                              f"batch {batch_size} on {PIPELINE_DATASET} train): --steps must "
                              f"be a multiple of {cycle}, so that every timed run holds the "
                              f"same number of k-means (and CRR) steps; got {steps}")
    precision = setup_precision(precision)
    keras.utils.set_random_seed(seed)
    compute_dtype = keras.mixed_precision.global_policy().compute_dtype
    build = dict(method=method, backbone=backbone, image_size=image_size, batch_size=batch_size,
                 stem=stem, probe=probe, umm=umm, hparams=hparams, crr_every=crr_every,
                 epoch=epoch)
    logging.info("building the %s/%s model; peak memory of its step", method, backbone)
    models = {}
    models["sslzoo"], opt_info = build_model("sslzoo", **build)
    views = {"local_crops": models["sslzoo"].local_crops,
             "local_size": models["sslzoo"].local_size}
    batch = fixed_batch(batch_size, image_size, NUM_CLASSES, seed, **views)
    ds = indexed_dataset(batch, epoch[0]) if epoch else batch_dataset(batch)
    skipped = {}  # config -> why it is not measured
    if methods.get(method).method not in PLAIN:
        skipped["plain"] = f"no plain-Keras reference for {method} (have: {', '.join(PLAIN)})"
    umm_refused = refusal(models["sslzoo"])
    if umm_refused:
        skipped["umm"] = umm_refused
    configs = tuple(c for c in CONFIGS if c not in skipped)
    # Memory first, while the sslzoo model is the only one: it also traces its step.
    machine.reset_peak_memory()
    time_steps(models["sslzoo"], ds, steps, warmup)
    memory, memory_kind = machine.peak_memory_mb()
    logging.info("building the %s models", ", ".join(configs[1:]))
    for name, why in skipped.items():
        logging.info("not timed: %s (%s)", name, why)
    for name in configs[1:]:
        models[name] = build_model(name, like=models["sslzoo"], **build)[0]

    def timed_steps(name):
        def once():
            t = time_steps(models[name], ds, steps, warmup, cycle=cycle)
            logging.info("%s: %.4f s/step", name, t)
            return t
        return once

    timing = alternate({name: timed_steps(name) for name in configs}, repeats)
    t = timing["median"]
    logging.info("timing the input pipeline")
    pipe, pipe_runs = pipeline_images_per_sec(data, batch_size, models["sslzoo"].view_layer(),
                                              steps, repeats, seed)
    logging.info("counting FLOPs and measuring the peak")
    online = models["plain"] if "plain" in models else models["sslzoo"].counted_forward()
    fwd, flops_source = fl.views_forward_flops(online, batch_size, image_size, **views)
    peak = measure_peak(compute_dtype)
    step_flops = fl.train_step_flops(fwd)

    def ratio(numerator, config):  # numerator / t[config], None for a config not timed
        return numerator / t[config] if config in t else None

    result = {
        "not_measured": skipped,
        "images_per_sec": batch_size / t["sslzoo"],
        "plain_keras_images_per_sec": ratio(batch_size, "plain"),
        "plain_reference": "plain" in t,
        "sslzoo_crr_off_images_per_sec": batch_size / t["sslzoo_crr_off"],
        "umm_images_per_sec": ratio(batch_size, "umm"),
        "sslzoo_overhead": ratio(t["sslzoo_crr_off"], "plain"),
        "crr_overhead": t["sslzoo"] / t["sslzoo_crr_off"],
        "umm_overhead": t["umm"] / t["sslzoo_crr_off"] if "umm" in t else None,
        "pipeline_images_per_sec": pipe,
        "pipeline_images_per_sec_runs": pipe_runs,
        "mfu": fl.mfu(step_flops, t["sslzoo"], peak["peak_flops_per_sec"]),
        "forward_flops": fwd,
        "train_step_flops": step_flops,
        "flops_source": flops_source,
        **peak,
        "peak_memory_mb": memory,
        "memory_kind": memory_kind,
        "step_seconds": t,
        "step_seconds_runs": timing["runs"],
        "run_order": timing["order"],
        "jit_compile": {name: bool(m.jit_compile) for name, m in models.items()},
        "machine": machine.describe(precision),
        "settings": {
            "method": method, "backbone": backbone, "batch_size": batch_size,
            "views_per_step": (2 + views["local_crops"]) * batch_size, "steps": steps,
            "warmup": warmup,
            "repeats": repeats, "image_size": image_size, "stem": stem, "precision": precision,
            "compute_dtype": compute_dtype, "probe": probe, "hparams": dict(hparams or {}),
            "crr_every": crr_every, "crr_taps": list(models["sslzoo"].taps),
            "kmeans_every": epoch[1] if epoch else None,
            "umm": models["umm"].settings if "umm" in models else None,
            "pipeline_dataset": f"{PIPELINE_DATASET} train",
            "seed": seed, **opt_info},
    }
    bad = [k for k in ("images_per_sec", "sslzoo_overhead", "crr_overhead", "umm_overhead",
                       "mfu") if result[k] is not None and not math.isfinite(result[k])]
    if bad:
        logging.warning("non-finite benchmark figures: %s", bad)
    result["targets"] = targets(result)
    return result
