"""Train-step benchmark: sslzoo vs a plain Keras step, CRR and UMM overheads, the input
pipeline, MFU and peak memory. Writes benchmark.json and benchmark.md and prints the table.

    sslzoo-benchmark                                   # SimCLR, resnet18, batch 128, 32 px
    sslzoo-benchmark --backbone=resnet_tiny --batch_size=16 --steps=2 --warmup=1 --repeats=1
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
flags.DEFINE_integer("repeats", 3, "Alternating runs of each configuration; medians are "
                     "reported.", lower_bound=1)
flags.DEFINE_integer("image_size", 32, "Image side in pixels.", lower_bound=8)
flags.DEFINE_enum("mixed_precision", "auto",
                  ["auto", "float32", "mixed_float16", "mixed_bfloat16"],
                  "Precision policy (auto: mixed_float16 on a GPU, float32 on a CPU).")
flags.DEFINE_float("umm_early_lr_mult", 1.0, "UMM early-part learning-rate multiple: 1 as "
                   "`sslzoo-pretrain --umm` from scratch, 0 frozen as with --init_from.",
                   lower_bound=0.0)
flags.DEFINE_bool("probe", True, "Give the sslzoo models the online linear probe, as pretraining "
                  "on labelled data does (--noprobe: without it).")
flags.DEFINE_string("data_dir", "", "TFDS data folder for digits (empty: the TFDS default).")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_string("output_dir", "", "Output folder; empty = runs/benchmark_<time>.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from sslzoo.bench.report import markdown
    from sslzoo.bench.run import run_benchmark
    from sslzoo.errors import SSLZooError
    from sslzoo.utils import io
    from sslzoo.utils.logs import quiet_tfds

    quiet_tfds()
    out = FLAGS.output_dir or f"runs/benchmark_{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        result = run_benchmark(
            method=FLAGS.method, backbone=FLAGS.backbone, batch_size=FLAGS.batch_size,
            steps=FLAGS.steps, warmup=FLAGS.warmup, repeats=FLAGS.repeats,
            image_size=FLAGS.image_size, precision=FLAGS.mixed_precision,
            probe=FLAGS.probe, umm={"early_lr_mult": FLAGS.umm_early_lr_mult},
            data_dir=FLAGS.data_dir or None, seed=FLAGS.seed)
    except SSLZooError as e:
        logging.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = markdown(result)
    io.write_json(os.path.join(out, "benchmark.json"), result)
    io.write_text(os.path.join(out, "benchmark.md"), table)
    print(table)
    print(f"written: {os.path.join(out, 'benchmark.json')}, {os.path.join(out, 'benchmark.md')}")
    return 0


def run():
    """Console-script entry point (``sslzoo-benchmark``)."""
    app.run(main)


if __name__ == "__main__":
    run()
