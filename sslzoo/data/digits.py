"""``digits``: a TFDS dataset builder over scikit-learn's bundled handwritten digits.

1,797 real 8×8 grey images (values 0..16, UCI optdigits test set) ship inside scikit-learn,
so building needs no network. Each image is scaled to 0..255 (×255/16, rounded), upsampled
to 32×32 with bilinear interpolation, and tiled to RGB uint8. Labels are 0..9, kept for
evaluation only; ``index`` is the row in ``sklearn.datasets.load_digits()``.

Splits (fixed): ``perm = numpy.random.RandomState(0).permutation(1797)``; ``train`` is
``perm[:1200]`` and ``test`` is ``perm[1200:]`` (597 images). The legacy RandomState stream is
stable across NumPy versions. Built once, it is cached under the TFDS ``data_dir`` like any
TFDS dataset, and TFDS split syntax (``train[:200]``) works.
"""
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

NUM_TRAIN = 1200
IMAGE_SIZE = 32


def split_indices():
    """(train indices, test indices) into sklearn's 1,797 digits."""
    perm = np.random.RandomState(0).permutation(1797)
    return perm[:NUM_TRAIN], perm[NUM_TRAIN:]


def upsample(images8):
    """(N, 8, 8) values 0..16 → (N, 32, 32, 3) uint8, bilinear."""
    x = np.round(np.asarray(images8, np.float32) * 255.0 / 16.0)[..., None]
    x = tf.image.resize(x, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear").numpy()
    return np.repeat(np.clip(np.round(x), 0, 255).astype(np.uint8), 3, axis=-1)


class Digits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's 8×8 digits, upsampled to 32×32 RGB; registered in TFDS as ``digits``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: 1,200 train / 597 test, 32×32 RGB."}

    def _info(self):
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3)),
                "label": tfds.features.ClassLabel(names=[str(i) for i in range(10)]),
                "index": tf.int32,
            }),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is bundled with scikit-learn
        train, test = split_indices()
        return {"train": self._generate_examples(train), "test": self._generate_examples(test)}

    def _generate_examples(self, indices):
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = upsample(digits.images[indices])
        for image, i in zip(images, indices):
            yield int(i), {"image": image, "label": int(digits.target[i]), "index": int(i)}
