"""``fashion_mnist`` offline: TFDS's own builder, fed from local copies of the four idx files.

Fashion-MNIST (Xiao et al. 2017) is 60,000 train and 10,000 test 28×28 grey images of 10
clothing classes. :class:`LocalFashionMNIST` subclasses TFDS's ``FashionMNIST`` builder (same
name, version, features, splits and cache folder ``<data_dir>/fashion_mnist/3.0.1``) and only
replaces where the files come from: for each file, the first of

1. the TFDS manual dir, ``<data_dir>/downloads/manual/``;
2. ``/usr/share/datasets/fashion-mnist/`` (Debian's ``dataset-fashion-mnist``).

Every file is checked against the size and sha256 that TFDS's own builder records
(``url_checksums/fashion_mnist.txt``) before anything is written. Debian's copies hold the
original compressed stream under a rewritten gzip header (no file name, another mtime), so a
file whose own bytes do not match is checked again with the original header restored
(``ORIGINAL_MTIME``): a match proves the same bytes TFDS would have downloaded.

For the CIFAR stem, ``square_uint8`` zero-pads each image by 2 pixels to 32×32 (the black
background extends; no pixel is interpolated) and tiles it to RGB; other sizes ≥ 32 resize the
padded image, smaller ones the original.
"""
import gzip
import hashlib
import os
import struct
import zlib

import numpy as np
import tensorflow as tf
from tensorflow_datasets.image_classification.mnist import FashionMNIST

from sslzoo.data.images import to_square_uint8
from sslzoo.errors import ConfigError, DataError

NAME = "fashion_mnist"
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
INSTALL = "apt-get install dataset-fashion-mnist"
IMAGE_SIZE = 32
PAD = (IMAGE_SIZE - 28) // 2
FILES = {  # split → (images file, labels file, number of examples)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
# The mtime in each original file's gzip header (2017-08-31 10:50 UTC); with it and the name
# (the file's, less .gz), a repacked file's stream rebuilds the original file byte for byte.
ORIGINAL_MTIME = {"train-images-idx3-ubyte.gz": 1504176606,
                  "train-labels-idx1-ubyte.gz": 1504176606,
                  "t10k-images-idx3-ubyte.gz": 1504176627,
                  "t10k-labels-idx1-ubyte.gz": 1504176627}


def expected_checksums():
    """{file name: (size, sha256)} as recorded by TFDS's own ``fashion_mnist`` builder."""
    return {info.filename: (int(info.size), info.checksum)
            for info in FashionMNIST.url_infos.values()}


def search_dirs(data_dir_root):
    """Where the files are looked for, in order: the TFDS manual dir, then Debian's folder."""
    return [os.path.join(str(data_dir_root), "downloads", "manual"), SYSTEM_DIR]


def _gzip_body(raw):
    """The deflate stream and trailer of a one-member gzip file (its header skipped)."""
    if len(raw) < 18 or raw[:3] != b"\x1f\x8b\x08":
        return None
    flags, pos = raw[3], 10
    if flags & 4:  # FEXTRA
        pos += 2 + struct.unpack("<H", raw[pos:pos + 2])[0]
    for bit in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & bit:
            end = raw.find(b"\0", pos)
            if end < 0:
                return None
            pos = end + 1
    if flags & 2:  # FHCRC
        pos += 2
    return raw[pos:]


def original_bytes_match(name, raw, size, sha256):
    """Whether ``raw`` is, or is a repack of, the original ``name`` of that size and sha256."""
    if len(raw) == size and hashlib.sha256(raw).hexdigest() == sha256:
        return True
    body = _gzip_body(raw)
    if body is None or name not in ORIGINAL_MTIME:
        return False
    header = (b"\x1f\x8b\x08\x08" + struct.pack("<I", ORIGINAL_MTIME[name]) + b"\x00\x03"
              + name[:-len(".gz")].encode() + b"\0")
    if len(header) + len(body) != size:
        return False
    return hashlib.sha256(header + body).hexdigest() == sha256


def find_files(data_dir_root):
    """{file name: verified bytes} of the four files; a DataError names what is missing or bad."""
    dirs = search_dirs(data_dir_root)
    found, missing = {}, []
    for name, (size, sha256) in sorted(expected_checksums().items()):
        path = next((os.path.join(d, name) for d in dirs
                     if os.path.isfile(os.path.join(d, name))), None)
        if path is None:
            missing.append(name)
            continue
        with open(path, "rb") as f:
            raw = f.read()
        if not original_bytes_match(name, raw, size, sha256):
            raise DataError(
                f"Fashion-MNIST file {path} is corrupt or truncated: {len(raw)} bytes, sha256 "
                f"{hashlib.sha256(raw).hexdigest()}, where TFDS records {size} bytes, sha256 "
                f"{sha256}. Replace it with the original file (reinstall with `apt-get install "
                f"--reinstall dataset-fashion-mnist`, or put the original in {dirs[0]}).")
        found[name] = raw
    if missing:
        raise DataError(
            f"Fashion-MNIST needs {', '.join(missing)}, found in neither {dirs[0]} nor "
            f"{dirs[1]}. Install them with `{INSTALL}` (as root), or copy the four original "
            f"idx .gz files into {dirs[0]}.")
    return found


def parse_idx(raw, name, count, shape):
    """A gzip'd idx file as a uint8 array (count, *shape), its header checked."""
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"Fashion-MNIST file {name} does not decompress: {e}") from e
    dims = len(shape) + 1
    head = struct.unpack(f">{1 + dims}I", data[:4 * (1 + dims)])
    if head != (0x800 + dims, count, *shape) or len(data) != 4 * (1 + dims) + count * \
            int(np.prod(shape, dtype=np.int64)):
        raise DataError(f"Fashion-MNIST file {name} has idx header {head} and {len(data)} "
                        f"bytes; expected {count} items of shape {shape}.")
    return np.frombuffer(data, np.uint8, offset=4 * (1 + dims)).reshape(count, *shape)


class LocalFashionMNIST(FashionMNIST, skip_registration=True):
    """TFDS's ``fashion_mnist`` builder (same info and cache), built from verified local files."""

    name = NAME

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing is downloaded: every file is found and checked first
        files = find_files(self.data_dir_root)
        return {split: self._generate_examples(parse_idx(files[im], im, n, (28, 28)),
                                               parse_idx(files[lb], lb, n, ()))
                for split, (im, lb, n) in FILES.items()}

    def _generate_examples(self, images, labels):
        for index, (image, label) in enumerate(zip(images, labels)):  # TFDS's keys and records
            yield index, {"image": image[..., None], "label": int(label)}


def builder(name, data_dir=None):
    """The local builder for ``fashion_mnist`` (optionally ``fashion_mnist:3.0.1``)."""
    version = name.split(":", 1)[1] if ":" in name else None
    if version not in (None, str(LocalFashionMNIST.VERSION)):
        raise ConfigError(f"fashion_mnist is built offline at version "
                        f"{LocalFashionMNIST.VERSION} only, not {version}; drop the version.")
    return LocalFashionMNIST(data_dir=data_dir)


def square_uint8(image, size):
    """[28, 28, 1] uint8 → [size, size, 3]: zero-pad to 32×32 if size ≥ 32, then resize."""
    if size >= IMAGE_SIZE:
        image = tf.pad(image, [[PAD, PAD], [PAD, PAD], [0, 0]])
    return to_square_uint8(image, size)


def is_fashion_mnist(name):
    """Whether a TFDS name means this data set (``fashion_mnist``, ``fashion_mnist:3.0.1``)."""
    return name.split(":")[0] == NAME


