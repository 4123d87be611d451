"""Self-supervised pretraining. With no flags: SimCLR on the built-in digits with resnet_tiny.

    sslzoo-pretrain --method=simclr --dataset=cifar10 --backbone=resnet18 --epochs=200
    python -m apps.pretrain --output_dir=runs/x --resume
"""
from absl import app, flags

from apps.flags import define_from_dataclass, run_from_flags
from sslzoo.train.config import PretrainConfig

define_from_dataclass(PretrainConfig)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from sslzoo.train.pretrain import pretrain

    summary = run_from_flags(PretrainConfig, pretrain)
    if summary is None:
        return 2
    print(f"\nrun directory: {summary['output_dir']}")
    if "linear_probe_top1" in summary:
        print(f"held-out linear-probe top-1 ({' -> '.join(summary['probe_splits'])}): "
              f"{summary['linear_probe_top1']:.4f} (kNN: {summary['knn_top1']:.4f})")
    print(f"images/s: {summary['images_per_sec']}, wall time: {summary['wall_time_sec']} s")
    return 0


def run():
    """Console-script entry point (``sslzoo-pretrain``)."""
    app.run(main)


if __name__ == "__main__":
    run()
