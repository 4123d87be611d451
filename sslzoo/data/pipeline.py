"""tf.data pipelines: SSL training batches (with views) and plain evaluation batches."""
import tensorflow as tf

from sslzoo.errors import ConfigError

CACHE_LIMIT_BYTES = 2 << 30  # decoded uint8 images up to 2 GiB are cached in memory


def _cacheable(data):
    return data.num_examples * data.image_size ** 2 * 3 <= CACHE_LIMIT_BYTES


def ssl_batches(data, batch_size, views=None, seed=0):
    """Shuffled, batched (images, labels) with ``drop_remainder``; ``views`` (the model's
    ``view_layer()``) maps images to (view1, view2) inside tf.data, or to the two global views
    and the local crops with multi-crop (else the model augments inside its train step). Under
    multi-worker training each worker takes its share of every global batch (DATA sharding)."""
    if batch_size > data.num_examples:
        raise ConfigError(f"batch_size {batch_size} is larger than the {data.num_examples} "
                          f"images of {data.name} {data.split}; lower --batch_size")
    ds = data.dataset.cache() if _cacheable(data) else data.dataset
    ds = ds.shuffle(min(data.num_examples, 20000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    if views is not None:
        ds = ds.map(lambda x, y: (views(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    # Several workers split the batches themselves: the default (by file) fails on datasets
    # with fewer files than workers, such as digits' one.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def eval_batches(data, batch_size=256):
    """Unshuffled, unaugmented (images, labels) batches for feature extraction."""
    return data.dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
