"""Data sources (digits, any TFDS name, ``folder:PATH``) as unbatched uint8 tf.data datasets.

``load(source, split, data_dir, image_size, download)`` returns an :class:`ImageData`.
Importing this package registers the ``digits`` TFDS builder.
"""
from sslzoo.data import digits as _digits  # noqa: F401  (registers the `digits` TFDS builder)
from sslzoo.data.images import ImageData
from sslzoo.data.sources import DEFAULT_DATASET, load

__all__ = ["DEFAULT_DATASET", "ImageData", "load"]

