"""tf.data pipelines: SSL training batches (with views) and plain evaluation batches."""
import numpy as np
import tensorflow as tf

from sslzoo.errors import ConfigError
from sslzoo.utils.seeds import scalar_seed, seed_for

CACHE_LIMIT_BYTES = 2 << 30  # decoded uint8 images up to 2 GiB are cached in memory
IN_MEMORY_LIMIT_BYTES = 1 << 30  # training splits up to 1 GiB are held as one tensor


def _nbytes(data):
    return data.num_examples * data.image_size ** 2 * 3


def _cacheable(data):
    return _nbytes(data) <= CACHE_LIMIT_BYTES


def ssl_batches(data, batch_size, views=None, seed=0, start_step=0, with_index=False):
    """The endless stream of shuffled (images, labels) training batches from global step
    ``start_step`` on, a pure function of ``seed``: a resumed run continues it exactly.
    ``with_index`` adds each image's position in ``data`` (int32): (images, labels, index),
    the same images (a method with a memory bank of the training set needs it).

    Pass p holds ``num_examples // batch_size`` batches (``drop_remainder``) in the order of a
    permutation drawn with the seed of (``seed``, p). ``views`` (the model's ``view_layer()``,
    or any ``f(images, seed=)``) maps each batch's images to its views with the seed of
    (``seed``, step), inside tf.data (else the model augments inside its train step). Under
    multi-worker training each worker takes its share of every global batch (DATA sharding).

    A split of up to ``IN_MEMORY_LIMIT_BYTES`` decoded is held in memory and batch k is
    computed directly. A larger one streams through a 20,000-image shuffle buffer, and a
    resumed run replays the stream up to its step (exact, but it reads the skipped batches).
    """
    check_batch_size(data, batch_size)
    if _nbytes(data) <= IN_MEMORY_LIMIT_BYTES:
        ds = _in_memory_stream(data, batch_size, seed, start_step, with_index)
    else:
        ds = data.dataset
        if with_index:  # shuffling ignores what the elements hold: the same images
            ds = ds.enumerate().map(lambda i, b: (*b, tf.cast(i, tf.int32)))
        ds = ds.shuffle(20000, seed=int(scalar_seed(seed, "shuffle")),
                        reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=True).repeat().skip(start_step)
    if views is not None:
        ds = ds.enumerate(start_step).map(
            lambda step, b: (views(b[0], seed=seed_for(seed, "views", step)), *b[1:]),
            num_parallel_calls=tf.data.AUTOTUNE)
    # Several workers split the batches themselves: the default (by file) fails on datasets
    # with fewer files than workers, such as digits' one.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _in_memory_stream(data, batch_size, seed, start_step, with_index=False):
    images, labels = zip(*data.dataset.batch(4096).as_numpy_iterator())
    images, labels = tf.constant(np.concatenate(images)), tf.constant(np.concatenate(labels))
    n, per_pass = data.num_examples, batches_per_pass(data, batch_size)

    def batch_at(step):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n), seed_for(seed, "shuffle", step // per_pass))
        idx = order[(step % per_pass) * batch_size:][:batch_size]
        batch = tf.gather(images, idx), tf.gather(labels, idx)
        return (*batch, idx) if with_index else batch

    return tf.data.Dataset.range(start_step, 2 ** 62).map(
        batch_at, num_parallel_calls=tf.data.AUTOTUNE)


def check_batch_size(data, batch_size):
    """A ConfigError when ``data`` holds fewer images than one batch."""
    if batch_size > data.num_examples:
        raise ConfigError(f"batch_size {batch_size} is larger than the {data.num_examples} "
                          f"images of {data.name} {data.split}; lower --batch_size")


def batches_per_pass(data, batch_size):
    """Training batches in one pass over ``data`` (``drop_remainder``)."""
    return data.num_examples // batch_size


def eval_batches(data, batch_size=256):
    """Unshuffled, unaugmented (images, labels) batches for feature extraction."""
    return data.dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
