"""``load``: one split of ``digits``, any TFDS dataset by name, or ``folder:PATH``."""

from sslzoo.data.folder import load_folder
from sslzoo.data.tfds_source import BUILT_IN, load_tfds
from sslzoo.errors import ConfigError
from sslzoo.utils.config import is_int

DEFAULT_DATASET = "digits"
FOLDER_PREFIX = "folder:"


def load(source=DEFAULT_DATASET, split="train", data_dir=None, image_size=None, download=True):
    """One split as :class:`~sslzoo.data.images.ImageData`: an unbatched, deterministic
    ``tf.data.Dataset`` of (uint8 image [S, S, 3], int32 label; -1 when unlabeled).

    ``source`` is ``digits``, a TFDS name (``cifar10``, ``stl10``, ...) or ``folder:PATH``.
    ``split`` is TFDS split syntax (``train``, ``train[:10%]``); folders record but ignore it.
    ``data_dir`` is the TFDS data folder (None: $TFDS_DATA_DIR or ~/tensorflow_datasets).
    ``image_size`` S defaults to the dataset's own fixed size (digits 32), else 224; images
    are resized (shorter side to S) and centre-cropped. ``download=False`` never downloads.
    """
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(f"no dataset given (got {source!r}); use {BUILT_IN}, or a TFDS name")
    if image_size is not None:
        if not is_int(image_size, 1):
            raise ConfigError(f"image_size must be a positive integer or None, "
                              f"got {image_size!r}")
        image_size = int(image_size)
    source = source.strip()
    if source.startswith(FOLDER_PREFIX):
        path = source[len(FOLDER_PREFIX):]
        if not path:
            raise ConfigError("folder: needs a path, e.g. folder:/data/my_images")
        return load_folder(path, image_size, split)
    return load_tfds(source, split, data_dir, image_size, download)
