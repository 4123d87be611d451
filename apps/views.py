"""View agreement of a method's two training views under its freshly initialised network
(``sslzoo.eval.views``): how often an image's other view is its nearest neighbour.

    sslzoo-views --method=dino --augment='crop_scale=0.5:1,flip=0,jitter_p=0'
"""
import json
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("method", "simclr", "SSL method; see sslzoo.methods.available().")
flags.DEFINE_string("backbone", "resnet_tiny", "Backbone.")
flags.DEFINE_string("dataset", "digits", "digits, any TFDS name, or folder:PATH.")
flags.DEFINE_string("data_dir", "", "TFDS data_dir.")
flags.DEFINE_string("split", "train", "Split the images come from.")
flags.DEFINE_integer("num_images", 256, "Images measured (the first N of the split).",
                     lower_bound=2)
flags.DEFINE_string("hparams", "", "Method hyperparameters, as sslzoo-pretrain's --hparams.")
flags.DEFINE_string("augment", "", "Recipe overrides, as sslzoo-pretrain's --augment.")
flags.DEFINE_integer("seed", 0, "Seed of the weights (the augmentation layers draw "
                     "their own views, so repeats vary a little).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from sslzoo.errors import SSLZooError
    from sslzoo.eval.views import measure_views
    from sslzoo.utils.logs import quiet_tfds

    quiet_tfds()
    try:
        result = measure_views(FLAGS.method, FLAGS.backbone, FLAGS.dataset, FLAGS.split,
                         FLAGS.num_images, FLAGS.hparams, FLAGS.augment, FLAGS.seed,
                         FLAGS.data_dir or None)
    except SSLZooError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


def run():
    """Console-script entry point (``sslzoo-views``)."""
    app.run(main)


if __name__ == "__main__":
    run()
