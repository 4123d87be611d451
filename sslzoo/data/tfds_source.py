"""Any TFDS dataset by name, failing fast (never hanging) when it would need a download."""
import difflib
import os
import socket

import tensorflow as tf
import tensorflow_datasets as tfds

from sslzoo.data.images import DEFAULT_SIZE, ImageData, to_square_uint8
from sslzoo.errors import ConfigError, DataError

DOWNLOAD_HOST = ("storage.googleapis.com", 443)


def network_available(timeout=3.0):
    """Whether the host TFDS downloads from answers within ``timeout`` seconds."""
    try:
        socket.create_connection(DOWNLOAD_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def _builder(name, data_dir):
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(name, tfds.list_builders(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown dataset {name!r}.{hint} Valid choices: digits (built in), "
                          "folder:PATH, or any name in tfds.list_builders().") from None


def _prepare(builder, name, data_dir, download):
    """Build or download ``name`` if needed; raise at once if that cannot work here."""
    if builder.is_prepared():
        return
    if name == "digits":  # built from scikit-learn's bundled files: no network at all
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False))
        return
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
    manual = os.path.join(data_dir, "downloads", "manual")
    needs_manual = bool(getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None))
    if needs_manual or not download or not network_available():
        why = ("it needs a manual download" if needs_manual else
               "downloads are off (--nodownload)" if not download else "there is no network")
        raise DataError(
            f"dataset {name!r} is not prepared in data_dir {data_dir} and {why}. Prepare it on a "
            f"machine with network (`tfds build {name} --data_dir {data_dir}`) and copy it there, "
            f"put its source files in manual_dir {manual}, or point --data_dir at a folder that "
            "holds it.")
    builder.download_and_prepare()


def load_tfds(name, split, data_dir=None, image_size=None, download=True):
    builder = _builder(name, data_dir)
    _prepare(builder, name, data_dir, download)
    features = builder.info.features
    if "image" not in features:
        raise DataError(f"dataset {name!r} has no 'image' feature; sslzoo needs images")
    label = features["label"] if "label" in features else None
    num_classes = getattr(label, "num_classes", None)
    shape = features["image"].shape
    native = shape[0] if shape[0] is not None and shape[0] == shape[1] else None
    size = int(image_size or native or DEFAULT_SIZE)
    try:
        num = builder.info.splits[split].num_examples
    except (KeyError, ValueError) as e:
        raise ConfigError(f"bad split {split!r} for {name}: {e}. Splits: "
                          f"{', '.join(builder.info.splits)}") from None
    ds = builder.as_dataset(split=split, shuffle_files=False,
                            read_config=tfds.ReadConfig(try_autocache=False))

    def convert(ex):
        y = tf.cast(ex["label"], tf.int32) if num_classes else tf.constant(-1, tf.int32)
        return to_square_uint8(ex["image"], size), y

    ds = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    return ImageData(ds, int(num), num_classes, size, name, split)
