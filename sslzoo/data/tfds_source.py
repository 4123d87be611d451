"""Any TFDS dataset by name, failing fast (never hanging) when it would need a download."""
import difflib
import os
import socket
import threading

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from sslzoo.data import fashion_mnist
from sslzoo.data.digits import Digits
from sslzoo.data.images import DEFAULT_SIZE, ImageData, to_square_uint8
from sslzoo.errors import ConfigError, DataError
from sslzoo.utils.io import file_lock

DOWNLOAD_HOST = ("storage.googleapis.com", 443)
BUILT_IN = ("digits (built in, no network), fashion_mnist (offline from Debian's "
            "dataset-fashion-mnist), folder:PATH")
LOCAL_BUILDERS = (Digits, fashion_mnist.LocalFashionMNIST)  # built from local files only


def network_available(timeout=3.0):
    """Whether ``DOWNLOAD_HOST`` accepts a TCP connection within ``timeout`` seconds.

    The probe runs in a daemon thread so that a slow DNS lookup cannot stretch it either.
    """
    result = []

    def probe():
        try:
            socket.create_connection(DOWNLOAD_HOST, timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result)


def _unknown(name):
    names = tfds.list_builders(with_community_datasets=False)  # community list needs network
    close = difflib.get_close_matches(name.split("/")[0].split(":")[0], names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown dataset {name!r}.{hint} Valid choices: {BUILT_IN}, or any "
                       "name in tfds.list_builders() (e.g. cifar10, stl10).")


def _builder(name, data_dir):
    head = name.split("/")[0]
    if ":" in head and not head.split(":", 1)[1][:1].isdigit():  # `name:1.0.0` is a version
        raise ConfigError(f"dataset {name!r} names a TFDS community namespace, which needs "
                          f"the network; use {BUILT_IN}, or a TFDS name such as cifar10.")
    if fashion_mnist.is_fashion_mnist(name):
        return fashion_mnist.builder(name, data_dir)
    try:
        return tfds.builder(name, data_dir=data_dir, try_gcs=False)
    except tfds.core.registered.DatasetNotFoundError:
        raise _unknown(name) from None


def _not_prepared(builder, name, why):
    root = str(builder.data_dir_root)
    manual = os.path.join(root, "downloads", "manual")
    return DataError(
        f"dataset {name!r} is not prepared in data_dir {root} and {why}. Either prepare it on a "
        f"machine with network (`tfds build {name} --data_dir DIR`) and copy DIR here or pass "
        f"it as --data_dir, or put its source files in the manual_dir {manual} and run again.")


def _prepare(builder, name, download):
    """Build or download ``name`` if needed; raise at once if that cannot work here."""
    if builder.is_prepared():
        return
    config = tfds.download.DownloadConfig(try_download_gcs=False)
    if isinstance(builder, LOCAL_BUILDERS):  # made from local files: no download
        builder.download_and_prepare(download_config=config)
        return
    instructions = builder.MANUAL_DOWNLOAD_INSTRUCTIONS
    manual = os.path.join(str(builder.data_dir_root), "downloads", "manual")
    if instructions and not (os.path.isdir(manual) and os.listdir(manual)):
        raise _not_prepared(builder, name, "it needs a manual download: "
                            + " ".join(str(instructions).split()))
    if not instructions:
        if not download:
            raise _not_prepared(builder, name, "downloading is turned off (download=False)")
        if not network_available():
            raise _not_prepared(builder, name, f"there is no network (cannot reach "
                                f"{DOWNLOAD_HOST[0]}:{DOWNLOAD_HOST[1]})")
    try:
        builder.download_and_prepare(download_config=config)
    except Exception as e:  # network drop, checksum, bad manual files: one clear error
        raise DataError(f"preparing dataset {name!r} in {builder.data_dir_root} failed: "
                        f"{type(e).__name__}: {e}") from e


def load_tfds(name, split="train", data_dir=None, image_size=None, download=True):
    """One split of the TFDS dataset ``name`` as :class:`ImageData` (see ``sslzoo.data.load``)."""
    builder = _builder(name, data_dir)
    if not builder.is_prepared():
        # Two runs started together would both build it, and the second one's rename fails:
        # one builds while the other waits, then reads what the first one built.
        with file_lock(os.path.join(str(builder.data_dir_root), f".{builder.name}.lock")):
            builder = _builder(name, data_dir)
            _prepare(builder, name, download)
    features = builder.info.features
    if "image" not in features or not isinstance(features["image"], tfds.features.Image):
        raise DataError(f"dataset {name!r} has no 'image' image feature (it has "
                        f"{', '.join(features.keys())}); sslzoo needs one. Pick an image dataset.")
    image = features["image"]
    if image.np_dtype != np.uint8:
        raise DataError(f"dataset {name!r} stores {image.np_dtype} images; sslzoo reads uint8 "
                        "images only. Pick another dataset or convert it to a folder of PNGs.")
    label = features["label"] if "label" in features else None
    num_classes = label.num_classes if isinstance(label, tfds.features.ClassLabel) else None
    height = image.shape[0]
    local = isinstance(builder, fashion_mnist.LocalFashionMNIST)
    size = int(image_size or (fashion_mnist.IMAGE_SIZE if local else height) or DEFAULT_SIZE)
    square = fashion_mnist.square_uint8 if local else to_square_uint8
    try:
        num = builder.info.splits[split].num_examples
    except (KeyError, ValueError, AssertionError) as e:
        raise ConfigError(f"bad split {split!r} for {name}: {e}. Splits: "
                          f"{', '.join(builder.info.splits)} (slices like train[:10%] work)"
                          ) from None
    ds = builder.as_dataset(split=split, shuffle_files=False,
                            read_config=tfds.ReadConfig(try_autocache=False))

    def convert(ex):
        y = tf.cast(ex["label"], tf.int32) if num_classes else tf.constant(-1, tf.int32)
        return square(ex["image"], size), y

    ds = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ImageData(ds, int(num), num_classes, size, name, split)
