"""``run_epoch_cost``: what the per-epoch CRR callback costs against an epoch of training.

At pretraining's defaults (SimCLR, ``resnet_tiny``, ``digits`` train at batch 256, CRR
reference sets of 512 held-out and 512 pretraining images, LiDAR on 32 images × 8 views), it
times, round-robin ``repeats`` times (``timing.alternate``), medians:

- t_step: one train step with per-step CRR on (pretraining's default ``--crr_every=1``), on a
  fixed batch as the overhead benchmark does; an epoch is t_epoch = steps_per_epoch · t_step;
- t_crr: the callback's ``on_epoch_end`` with ``quality=False`` (ΔR of every tap on both
  reference sets, the warning);
- t_quality: the same with ``quality=True`` (also RankMe and LiDAR of every tap).

    crr_callback_share = t_crr / t_epoch
    quality_share      = (t_quality − t_crr) / t_epoch    (target: ≤ 0.03)
"""
import keras

from sslzoo import data as sdata
from sslzoo.bench import machine
from sslzoo.bench.run import NUM_CLASSES, build_model
from sslzoo.bench.timing import alternate, batch_dataset, fixed_batch, time_call, time_steps
from sslzoo.crr import CRRCallback
from sslzoo.data.pipeline import batches_per_pass
from sslzoo.train.device import setup_precision

QUALITY_TARGET = 0.03


def run_epoch_cost(method="simclr", backbone="resnet_tiny", batch_size=256, reference_size=512,
                   lidar_images=32, lidar_views=8, steps=3, warmup=2, repeats=5,
                   precision="auto", data_dir=None, seed=0):
    """Time an epoch and the CRR callback with and without the quality scores (see the module
    docstring); returns the figures."""
    precision = setup_precision(precision)
    keras.utils.set_random_seed(seed)
    load = dict(data_dir=data_dir or None, image_size=32)
    train = sdata.load("digits", split="train", **load)
    heldout = sdata.load("digits", split="test", **load)
    n = min(reference_size, train.num_examples, heldout.num_examples)
    per_epoch = batches_per_pass(train, batch_size)
    model, _ = build_model("sslzoo", method, backbone, 32, batch_size, crr_every=1)
    ds = batch_dataset(fixed_batch(batch_size, 32, NUM_CLASSES, seed))
    callbacks = {}
    for name, quality in (("crr_callback", False), ("crr_callback_quality", True)):
        cb = CRRCallback(heldout.first_images(n), train.first_images(n), quality=quality,
                         lidar_images=lidar_images, lidar_views=lidar_views, seed=seed)
        cb.set_model(model)
        cb.on_train_begin()
        cb.on_epoch_end(0, {})  # traces the inference forward
        callbacks[name] = cb
    epoch = iter(range(1, 10 ** 6))
    measures = {"step": lambda: time_steps(model, ds, steps, warmup)}
    for name, cb in callbacks.items():
        measures[name] = (lambda c: lambda: time_call(c.on_epoch_end, next(epoch), {}))(cb)
    timing = alternate(measures, repeats)
    t = timing["median"]
    t_epoch = per_epoch * t["step"]
    share = (t["crr_callback_quality"] - t["crr_callback"]) / t_epoch
    return {
        "epoch_seconds": t_epoch, "steps_per_epoch": per_epoch,
        "crr_callback_seconds": t["crr_callback"],
        "crr_callback_quality_seconds": t["crr_callback_quality"],
        "crr_callback_share": t["crr_callback"] / t_epoch,
        "quality_share": share,
        "targets": {"quality_share": {"target": f"<= {QUALITY_TARGET}",
                                      "met": bool(share <= QUALITY_TARGET)}},
        "runs": timing["runs"], "run_order": timing["order"],
        "machine": machine.describe(precision),
        "settings": {"method": method, "backbone": backbone, "batch_size": batch_size,
                     "dataset": "digits train", "reference_size": n,
                     "lidar_images": min(lidar_images, n), "lidar_views": lidar_views,
                     "steps": steps, "warmup": warmup, "repeats": repeats,
                     "precision": precision, "seed": seed},
    }


def markdown(result):
    s = result["settings"]
    rows = [("epoch (steps_per_epoch × median step)",
             f"{result['epoch_seconds']:.3f} s ({result['steps_per_epoch']} steps)"),
            ("CRR callback, ΔR only", f"{result['crr_callback_seconds']:.3f} s "
             f"({100 * result['crr_callback_share']:.1f}% of the epoch)"),
            ("CRR callback with RankMe and LiDAR",
             f"{result['crr_callback_quality_seconds']:.3f} s"),
            ("RankMe + LiDAR, share of the epoch",
             f"{100 * result['quality_share']:.2f}% (target ≤ {100 * QUALITY_TARGET:.0f}%: "
             f"{'met' if result['targets']['quality_share']['met'] else 'NOT met'})")]
    head = (f"Per-epoch CRR callback cost: {s['method']}, {s['backbone']}, {s['dataset']} at "
            f"batch {s['batch_size']}, reference sets of {s['reference_size']}, LiDAR on "
            f"{s['lidar_images']} images × {s['lidar_views']} views; medians of "
            f"{s['repeats']} alternating runs\n\n| | |\n|---|---|\n")
    return head + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n"
