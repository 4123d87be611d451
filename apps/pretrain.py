"""Self-supervised pretraining. With no flags: SimCLR on the built-in digits with resnet_tiny.

    sslzoo-pretrain --method=simclr --dataset=cifar10 --backbone=resnet18 --epochs=200
    python -m apps.pretrain --output_dir=runs/x --resume
"""
import os
import sys

from absl import app, flags, logging

from apps.flags import define_from_dataclass, values_for
from sslzoo.errors import SSLZooError
from sslzoo.train.config import PretrainConfig, merge_for_resume

define_from_dataclass(PretrainConfig)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from sslzoo.train.pretrain import pretrain
    from sslzoo.utils.io import read_json
    from sslzoo.utils.logs import quiet_tfds

    quiet_tfds()

    values, present = values_for(PretrainConfig)
    saved = os.path.join(values["output_dir"], "config.json")
    if values["resume"] and values["output_dir"] and os.path.exists(saved):
        values = merge_for_resume(read_json(saved), present)
    try:
        summary = pretrain(PretrainConfig(**values))
    except SSLZooError as e:
        logging.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = values["output_dir"] or "the run directory"
    print(f"\nrun directory: {summary.get('output_dir', out)}")
    if "linear_probe_top1" in summary:
        print(f"held-out linear-probe top-1 ({' -> '.join(summary['probe_splits'])}): "
              f"{summary['linear_probe_top1']:.4f}")
    print(f"images/s: {summary['images_per_sec']}, wall time: {summary['wall_time_sec']} s")
    return 0


def run():
    """Console-script entry point (``sslzoo-pretrain``)."""
    app.run(main)


if __name__ == "__main__":
    run()
