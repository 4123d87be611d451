"""Data sources (digits, any TFDS name, ``folder:PATH``) as unbatched uint8 tf.data datasets.

``load(source, split, data_dir, image_size, download)`` returns an :class:`ImageData`.
"""
from sslzoo.data import digits as _digits  # noqa: F401  (registers the `digits` TFDS builder)
from sslzoo.data.folder import load_folder
from sslzoo.data.images import ImageData
from sslzoo.data.tfds_source import load_tfds
from sslzoo.errors import ConfigError

DEFAULT_DATASET = "digits"


def load(source=DEFAULT_DATASET, split="train", data_dir=None, image_size=None, download=True):
    """One split of ``digits``, a TFDS dataset by name, or ``folder:PATH`` (split ignored)."""
    if not source:
        raise ConfigError("no dataset given; use digits, a TFDS name or folder:PATH")
    if source.startswith("folder:"):
        return load_folder(source[len("folder:"):], image_size)
    return load_tfds(source, split, data_dir, image_size, download)


__all__ = ["DEFAULT_DATASET", "ImageData", "load"]
