"""Train-step benchmark: sslzoo vs a plain Keras step, CRR and UMM overheads, the input
pipeline, MFU and peak memory. Writes benchmark.json and benchmark.md and prints the table.

With --epoch_cost it times the per-epoch CRR callback (ΔR, and RankMe and LiDAR) against an
epoch at pretraining's defaults (sslzoo.bench.epoch_cost) and writes epoch_cost.json/.md.

With --scaling it runs the scaling study instead (sslzoo.bench.scaling): the ΔR cost over a
grid of batch sizes and feature widths with its log-log slopes, and the step time (CRR on and
off) per batch size. It writes scaling.json and scaling.md and prints the tables.

    sslzoo-benchmark                                   # SimCLR, resnet18, batch 128, 32 px
    sslzoo-benchmark --backbone=resnet_tiny --batch_size=16 --steps=2 --warmup=1 --repeats=1
    sslzoo-benchmark --scaling                         # batches 64..1024 × widths 128..2048
    sslzoo-benchmark --epoch_cost                      # the per-epoch CRR callback's cost
"""
import os
import sys
import time

from absl import app, flags, logging

flags.DEFINE_string("method", "simclr", "SSL method to benchmark.")
flags.DEFINE_string("backbone", "resnet18", "Backbone: resnet18, resnet50 or resnet_tiny.")
flags.DEFINE_integer("batch_size", 128, "Images per step (each gives two views).", lower_bound=2)
flags.DEFINE_integer("steps", 10, "Timed train steps per run.", lower_bound=1)
flags.DEFINE_integer("warmup", 3, "Untimed steps before them in every run (the first traces).",
                     lower_bound=1)
flags.DEFINE_integer("crr_every", 1, "Measure ΔR every N steps in the CRR-on model, as "
                     "sslzoo-pretrain's --crr_every; --steps must be a multiple of it.",
                     lower_bound=1)
flags.DEFINE_integer("repeats", 3, "Alternating runs of each configuration; medians are "
                     "reported.", lower_bound=1)
flags.DEFINE_integer("image_size", 32, "Image side in pixels.", lower_bound=8)
flags.DEFINE_enum("mixed_precision", "auto",
                  ["auto", "float32", "mixed_float16", "mixed_bfloat16"],
                  "Precision policy (auto: mixed_float16 on a GPU, float32 on a CPU).")
flags.DEFINE_float("umm_early_lr_mult", 1.0, "UMM early-part learning-rate multiple: 1 as "
                   "`sslzoo-pretrain --umm` from scratch, 0 frozen as with --init_from.",
                   lower_bound=0.0)
flags.DEFINE_string("hparams", "", "Method hyperparameters, as in sslzoo-pretrain, e.g. "
                    "'proj_hidden_dim=256,proj_dim=128'.")
flags.DEFINE_bool("probe", True, "Give the sslzoo models the online linear probe, as pretraining "
                  "on labelled data does (--noprobe: without it).")
flags.DEFINE_string("data_dir", "", "TFDS data folder for digits (empty: the TFDS default).")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_string("output_dir", "", "Output folder; empty = runs/benchmark_<time> "
                    "(runs/scaling_<time> with --scaling).")
flags.DEFINE_bool("scaling", False, "Run the scaling study (ΔR cost and step time vs batch "
                  "size and width) instead of the benchmark; writes scaling.json/.md.")
flags.DEFINE_bool("epoch_cost", False, "Measure the per-epoch CRR callback (ΔR, and RankMe and "
                  "LiDAR) against an epoch at pretraining's defaults instead; writes "
                  "epoch_cost.json/.md (--method, --repeats, --mixed_precision, --data_dir, "
                  "--seed apply).")
flags.DEFINE_string("scaling_backbone", "resnet_tiny", "Backbone of the scaling study's step "
                    "times (--method, --image_size, --probe, --mixed_precision apply).")
flags.DEFINE_list("scaling_batches", ["64", "128", "256", "512", "1024"],
                  "Batch sizes (images; 2 views each) of the scaling study.")
flags.DEFINE_list("scaling_widths", ["128", "256", "512", "1024", "2048"],
                  "Feature widths of the scaling study's ΔR grid.")
flags.DEFINE_integer("scaling_steps", 3, "Timed train steps per run in the scaling study.",
                     lower_bound=1)
flags.DEFINE_integer("scaling_warmup", 2, "Untimed steps before them in every run.",
                     lower_bound=1)
flags.DEFINE_integer("scaling_repeats", 3, "Alternating CRR-on/off runs per batch size.",
                     lower_bound=1)
flags.DEFINE_integer("scaling_delta_r_repeats", 7, "Timed ΔR measurements per grid cell (and "
                     "per batch for the taps), after 2 untimed ones; medians.", lower_bound=1)
FLAGS = flags.FLAGS


def _positive_ints(values):
    try:
        return all(int(v) >= 1 for v in values)
    except ValueError:
        return False


for _name in ("scaling_batches", "scaling_widths"):
    flags.register_validator(_name, _positive_ints, f"--{_name} takes comma-separated "
                             "integers >= 1")


def scaling_study():
    """(result, Markdown) of the scaling study from the flags."""
    from sslzoo.bench.scaling import markdown, run_scaling

    result = run_scaling(
        method=FLAGS.method, backbone=FLAGS.scaling_backbone,
        batches=[int(v) for v in FLAGS.scaling_batches],
        widths=[int(v) for v in FLAGS.scaling_widths], steps=FLAGS.scaling_steps,
        warmup=FLAGS.scaling_warmup, repeats=FLAGS.scaling_repeats,
        delta_r_repeats=FLAGS.scaling_delta_r_repeats, image_size=FLAGS.image_size,
        precision=FLAGS.mixed_precision, probe=FLAGS.probe, seed=FLAGS.seed)
    return result, markdown(result)


def epoch_cost():
    """(result, Markdown) of the per-epoch callback cost from the flags."""
    from sslzoo.bench.epoch_cost import markdown, run_epoch_cost

    result = run_epoch_cost(method=FLAGS.method, repeats=FLAGS.repeats,
                            precision=FLAGS.mixed_precision, data_dir=FLAGS.data_dir or None,
                            seed=FLAGS.seed)
    return result, markdown(result)


def overhead_benchmark():
    """(result, Markdown) of the overhead benchmark from the flags."""
    from sslzoo.bench.report import markdown
    from sslzoo.bench.run import run_benchmark
    from sslzoo.utils.config import parse_hparams

    result = run_benchmark(
        method=FLAGS.method, backbone=FLAGS.backbone, batch_size=FLAGS.batch_size,
        steps=FLAGS.steps, warmup=FLAGS.warmup, repeats=FLAGS.repeats,
        image_size=FLAGS.image_size, precision=FLAGS.mixed_precision,
        probe=FLAGS.probe, umm={"early_lr_mult": FLAGS.umm_early_lr_mult},
        hparams=parse_hparams(FLAGS.hparams), data_dir=FLAGS.data_dir or None, seed=FLAGS.seed,
        crr_every=FLAGS.crr_every)
    return result, markdown(result)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from sslzoo.errors import SSLZooError
    from sslzoo.utils import io
    from sslzoo.utils.logs import quiet_tfds

    quiet_tfds()
    if FLAGS.scaling and FLAGS.epoch_cost:
        raise app.UsageError("--scaling and --epoch_cost are two studies: pass one")
    kind = "scaling" if FLAGS.scaling else "epoch_cost" if FLAGS.epoch_cost else "benchmark"
    study = {"scaling": scaling_study, "epoch_cost": epoch_cost}.get(kind, overhead_benchmark)
    out = FLAGS.output_dir or f"runs/{kind}_{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        result, table = study()
    except SSLZooError as e:
        logging.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths = [os.path.join(out, f"{kind}.json"), os.path.join(out, f"{kind}.md")]
    io.write_json(paths[0], result)
    io.write_text(paths[1], table)
    print(table)
    print(f"written: {paths[0]}, {paths[1]}")
    return 0


def run():
    """Console-script entry point (``sslzoo-benchmark``)."""
    app.run(main)


if __name__ == "__main__":
    run()
