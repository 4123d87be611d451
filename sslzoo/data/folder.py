"""``folder:PATH``: a folder of images, in class sub-folders or flat (unlabeled).

Layouts: ``PATH/<class>/**/<image>`` (classes are the sorted names of the sub-folders that hold
images, labels 0..K-1) or ``PATH/<image>`` (unlabeled, label -1). With both, the sub-folders
win and the top-level files are ignored with a warning. Hidden files and folders are skipped.
Every file is decoded once up front with TensorFlow; files it cannot decode are skipped and
counted in the log, never a crash. The split name is recorded but not used: give each split
its own folder.
"""
import os

import tensorflow as tf
from absl import logging

from sslzoo.data.images import DEFAULT_SIZE, ImageData, to_square_uint8
from sslzoo.errors import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _is_image(name):
    return name.lower().endswith(EXTENSIONS) and not name.startswith(".")


def _walk(top):
    """os.walk that does not enter hidden folders (.ipynb_checkpoints, .git, ...)."""
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        yield root, dirs, files


def list_images(path):
    """(files, labels, class names or None) of a folder, sorted for determinism."""
    if not os.path.isdir(path):
        raise DataError(f"image folder {path!r} does not exist or is not a folder")
    entries = sorted(e for e in os.listdir(path) if not e.startswith("."))
    classes = [e for e in entries if os.path.isdir(os.path.join(path, e))
               and any(_is_image(f) for _, _, fs in _walk(os.path.join(path, e)) for f in fs)]
    top = [e for e in entries if _is_image(e) and os.path.isfile(os.path.join(path, e))]
    if classes:
        if top:
            logging.warning("%s has class sub-folders; its %d top-level images are ignored",
                            path, len(top))
        files, labels = [], []
        for k, c in enumerate(classes):
            for root, _, fs in sorted(_walk(os.path.join(path, c))):
                for f in sorted(filter(_is_image, fs)):
                    files.append(os.path.join(root, f))
                    labels.append(k)
        return files, labels, classes
    if not top:
        raise DataError(f"no images found in {path} (looked for {', '.join(EXTENSIONS)} files, "
                        "flat or in class sub-folders)")
    return [os.path.join(path, f) for f in top], [-1] * len(top), None


def _decode(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.ensure_shape(image, (None, None, 3))


def readable(files):
    """Indices of the files TensorFlow can decode (one parallel pass)."""
    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(files)), files))
    ds = ds.map(lambda i, f: (i, tf.shape(_decode(f))), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.ignore_errors()
    return sorted(int(i) for i, _ in ds.as_numpy_iterator())


def load_folder(path, image_size=None, split="train"):
    """The images under ``path`` as :class:`ImageData` (see ``sslzoo.data.load``).

    When ``path/<split>/`` exists (e.g. ``train/`` and ``test/``), that sub-folder is the split;
    otherwise the whole folder is used whatever the split.
    """
    path = os.path.expanduser(path)
    split_dir = os.path.join(path, split.split("[")[0])
    if split and os.path.isdir(split_dir):
        path = split_dir
    files, labels, classes = list_images(path)
    ok = readable(files)
    skipped = [files[i] for i in sorted(set(range(len(files))) - set(ok))]
    if skipped:
        logging.warning("skipped %d of %d files in %s that could not be decoded: %s%s",
                        len(skipped), len(files), path,
                        ", ".join(os.path.relpath(f, path) for f in skipped[:10]),
                        " ..." if len(skipped) > 10 else "")
    if not ok:
        raise DataError(f"none of the {len(files)} image files in {path} could be decoded; "
                        "check that they are real, complete PNG/JPEG/BMP/GIF files")
    size = int(image_size or DEFAULT_SIZE)
    ds = tf.data.Dataset.from_tensor_slices(([files[i] for i in ok],
                                             tf.constant([labels[i] for i in ok], tf.int32)))
    ds = ds.map(lambda f, y: (to_square_uint8(_decode(f), size), y),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ImageData(ds, len(ok), len(classes) if classes else None, size, f"folder:{path}",
                     split)
