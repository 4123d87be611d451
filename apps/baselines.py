"""Reference linear probes on the pretraining app's probe splits: raw pixels and random-init
backbones (one per seed), so a pretrained probe can be read against them.

    python -m apps.baselines --seeds=0,1,2
"""
import json

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "digits", "digits, any TFDS name, or folder:PATH.")
flags.DEFINE_string("data_dir", "", "TFDS data_dir.")
flags.DEFINE_string("backbone", "resnet_tiny", "Backbone for the random-init probe.")
flags.DEFINE_string("probe_train_split", "train", "Split the probe is fitted on.")
flags.DEFINE_string("probe_test_split", "test", "Split the probe is scored on.")
flags.DEFINE_string("seeds", "0,1,2", "Comma-separated seeds of the random-init backbones.")


def main(argv):
    del argv
    import numpy as np

    from sslzoo import data
    from sslzoo.eval.baselines import random_init_probe, raw_pixel_probe
    from sslzoo.utils.logs import quiet_tfds

    quiet_tfds()
    load = lambda split: data.load(FLAGS.dataset, split, data_dir=FLAGS.data_dir or None)
    fit, test = load(FLAGS.probe_train_split), load(FLAGS.probe_test_split)
    seeds = [int(s) for s in FLAGS.seeds.split(",") if s.strip()]
    rand = [random_init_probe(FLAGS.backbone, fit, test, seed=s) for s in seeds]
    result = {"raw_pixels": raw_pixel_probe(fit, test), f"random_{FLAGS.backbone}": rand,
              "random_mean": float(np.mean(rand)), "random_std": float(np.std(rand)),
              "splits": [FLAGS.probe_train_split, FLAGS.probe_test_split]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
